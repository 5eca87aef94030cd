"""The SDK sends targets as plain arrays or torchvision tv_tensors and gets the same
kinds back, moved as torchvision itself moves them."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
from augsvc_client import AsyncClient, Client
from augsvc_client.torch_data import collate_detection
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

H, W = 48, 64
FLIP = {"ops": [{"op": "hflip", "p": 1.0}]}
CROP = {"ops": [{"op": "random_resized_crop", "size": [32, 32], "scale": [0.5, 1.0]},
                {"op": "rotate", "degrees": 15}]}  # fmt: skip


@pytest.fixture
def client(augsvc_url):
    with Client(augsvc_url) as c:
        yield c


def images(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, 3, H, W), dtype=np.uint8)


def test_tv_tensors_come_back_as_tv_tensors_moved_like_torchvision(client):
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[4.0, 6.0, 20.0, 10.0], [30.0, 12.5, 8.0, 30.0]]),
        format="XYWH", canvas_size=(H, W),
    )  # fmt: skip
    masks = tv_tensors.Mask(torch.zeros(2, H, W, dtype=torch.bool))
    masks[0, 6:16, 4:24] = True
    masks[1, 12:40, 30:38] = True
    points = tv_tensors.KeyPoints(torch.tensor([[5.5, 7.5], [40.0, 20.0]]), canvas_size=(H, W))
    target = {"boxes": boxes, "labels": torch.tensor([1, 2]), "masks": masks, "keypoints": points}
    batch = client.augment(images(1), FLIP, seed=1, targets=[target])
    (moved,) = batch.targets
    assert isinstance(moved["boxes"], tv_tensors.BoundingBoxes)
    assert moved["boxes"].format == tv_tensors.BoundingBoxFormat.XYWH
    torch.testing.assert_close(
        moved["boxes"].as_subclass(torch.Tensor),
        TF.horizontal_flip(boxes).as_subclass(torch.Tensor),
    )
    assert isinstance(moved["masks"], tv_tensors.Mask) and moved["masks"].dtype == torch.bool
    assert torch.equal(moved["masks"], masks.flip(-1))
    assert isinstance(moved["keypoints"], tv_tensors.KeyPoints)
    torch.testing.assert_close(moved["keypoints"].as_subclass(torch.Tensor).reshape(-1, 2),
                               torch.tensor([[W - 5.5, 7.5], [W - 40.0, 20.0]]))  # fmt: skip
    assert moved["labels"].tolist() == [1, 2] and moved["box_index"].tolist() == [0, 1]


def test_plain_arrays_come_back_as_numpy_per_image(client):
    targets = [
        {"boxes": [[0, 0, 10, 10], [50, 30, 64, 48]], "labels": [5, 6]},
        None,
        {"boxes": np.array([[10, 10, 30, 30]]), "masks": np.ones((H, W), dtype=np.uint8)},
    ]
    data = images(3)
    with pytest.raises(ValueError, match="masks"):
        client.augment(data, CROP, seed=2, targets=targets)  # a mask for some images only
    targets[0]["masks"] = targets[1] = None
    targets[2].pop("masks")
    batch = client.augment(data, CROP, seed=2, targets=targets)
    assert batch.targets[1] is None
    first, third = batch.targets[0], batch.targets[2]
    assert isinstance(first["boxes"], np.ndarray) and first["boxes"].dtype == np.float32
    assert first["labels"].tolist() == [[5, 6][i] for i in first["box_index"]]
    assert ((third["boxes"] >= 0) & (third["boxes"] <= 32)).all()
    same = client.augment(data[2:], CROP, seed=2, offset=2, targets=[targets[2]])
    np.testing.assert_array_equal(same.targets[0]["boxes"], third["boxes"])


def test_the_async_client_sends_targets_too(augsvc_url, client):
    target = [{"boxes": [[1, 2, 30, 40]], "keypoints": [[3, 4]]}]

    async def run():
        async with AsyncClient(augsvc_url) as c:
            return await c.augment(images(1), CROP, seed=9, targets=target)

    moved = asyncio.run(run()).targets[0]
    expected = client.augment(images(1), CROP, seed=9, targets=target).targets[0]
    np.testing.assert_array_equal(moved["boxes"], expected["boxes"])
    np.testing.assert_array_equal(moved["keypoints"], expected["keypoints"])


def test_collate_detection_stacks_images_and_lists_targets():
    samples = [(torch.zeros(3, 4, 4), {"boxes": torch.zeros(2, 4)}),
               (torch.ones(3, 4, 4), {"boxes": torch.zeros(0, 4)})]  # fmt: skip
    stacked, targets = collate_detection(samples)
    assert stacked.shape == (2, 3, 4, 4) and [len(t["boxes"]) for t in targets] == [2, 0]
    ragged, _ = collate_detection([(torch.zeros(3, 4, 4), None), (torch.zeros(3, 5, 4), None)])
    assert isinstance(ragged, list) and len(ragged) == 2
