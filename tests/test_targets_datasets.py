"""COCO and paired datasets stream their targets with the images, against a real server:
boxes and masks land on the pixels, and resuming or re-sharding gives every sample the
same targets as the uninterrupted run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from augsvc.datasets import epoch_order
from tests.stream_frames import frames
from tests.targets_helpers import pixel_extent

N = 40
H, W = 48, 64
SEED = 5
RECIPE = {
    "ops": [
        {"op": "random_resized_crop", "size": [32, 40], "scale": [0.6, 1.0]},
        {"op": "hflip", "p": 0.5},
        {"op": "color_jitter", "brightness": 0.2},
    ],
    # The digest seeds the draws; the overlap bounds below were set on the draws this
    # recipe had while auto was the default channel count, so it names auto.
    "output": {"channels": "auto"},
}


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def rectangle(i: int) -> tuple[int, int, int, int]:
    rng = np.random.default_rng(i)
    h, w = int(rng.integers(14, 30)), int(rng.integers(14, 40))
    return int(rng.integers(0, H - h)), int(rng.integers(0, W - w)), h, w


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    coco, paired = root / "coco", root / "paired"
    for folder in (coco / "images", paired / "images", paired / "masks"):
        folder.mkdir(parents=True)
    images, anns = [], []
    for i in range(N):
        top, left, h, w = rectangle(i)
        pixels = np.zeros((H, W, 3), dtype=np.uint8)
        pixels[top : top + h, left : left + w, 0] = 255
        label = np.zeros((H, W), dtype=np.uint8)
        label[top : top + h, left : left + w] = 9
        (coco / "images" / f"{i:03d}.png").write_bytes(png(pixels))
        (paired / "images" / f"{i:03d}.png").write_bytes(png(pixels))
        (paired / "masks" / f"{i:03d}.png").write_bytes(png(label))
        images.append({"id": 100 + i, "file_name": f"{i:03d}.png", "height": H, "width": W})
        box = [left, top, w, h]
        if i % 2:  # a polygon, as COCO's instances mostly are
            poly = [left, top, left + w, top, left + w, top + h, left, top + h]
            segmentation: object = [poly]
        else:  # compressed RLE, as COCO's crowds are
            rle = coco_mask.encode(np.asfortranarray((label > 0).astype(np.uint8)))
            segmentation = {"size": rle["size"], "counts": rle["counts"].decode()}
        keypoints = [left + 0.5, top + 0.5, 2, left + w - 0.5, top + h - 0.5, 2]
        anns.append({"id": i, "image_id": 100 + i, "category_id": 3, "bbox": box,
                     "segmentation": segmentation, "keypoints": keypoints})  # fmt: skip
    categories = [{"id": 3, "name": "rectangle", "keypoints": ["tl", "br"]}]
    document = {"images": images, "annotations": anns, "categories": categories}
    (coco / "instances.json").write_text(json.dumps(document))
    return root


@pytest.fixture(scope="module")
def server(start_augsvc, data_root):
    srv = start_augsvc(AUGSVC_DATA_ROOTS=str(data_root))
    with srv.client() as c:
        assert c.put("/v1/recipes/boxes", json=RECIPE).status_code == 201
        spec = {"kind": "coco", "path": str(data_root / "coco" / "images"),
                "annotations": str(data_root / "coco" / "instances.json")}  # fmt: skip
        r = c.put("/v1/datasets/shapes", json=spec)
        assert r.status_code == 201, r.text
        assert r.json()["size"] == N and r.json()["classes"] == ["rectangle"]
        r = c.put("/v1/datasets/seg", json={"kind": "paired", "path": str(data_root / "paired")})
        assert r.status_code == 201, r.text
    return srv


def stream(server, dataset: str = "shapes", **params) -> list:
    query = {"recipe": "boxes", "seed": SEED, "batch_size": 8, **params}
    url = f"/v1/datasets/{dataset}/stream"
    with server.client() as c, c.stream("GET", url, params=query) as r:
        assert r.status_code == 200, r.read()
        return list(frames(r))


def per_sample(got: list) -> dict[int, tuple]:
    """index -> (image, boxes, box indices, labels, keypoints, visibility, mask) bytes."""
    out = {}
    for t, _ in got:
        for row, index in enumerate(t["indices"].tolist()):
            boxes = t["targets.box_image"] == row
            points = t["targets.keypoint_image"] == row
            out[index] = (
                t["images"][row].tobytes(), t["targets.boxes"][boxes].tobytes(),
                t["targets.box_index"][boxes].tolist(), t["targets.labels"][boxes].tolist(),
                t["targets.keypoints"][points].tobytes(),
                t["targets.keypoint_visible"][points].tolist(), t["targets.masks"][row].tobytes(),
            )  # fmt: skip
    return out


def test_coco_frames_carry_boxes_keypoints_and_instance_masks_on_the_pixels(server):
    got = stream(server)
    seen = 0
    for t, _ in got:
        assert t["targets.masks"].shape == (len(t["indices"]), 1, 32, 40)
        for row in range(len(t["indices"])):
            on = t["images"][row, 0] > 127
            extent = pixel_extent(_torch(on))
            rows = np.flatnonzero(t["targets.box_image"] == row)
            if extent is None:
                continue
            (j,) = rows
            assert t["targets.box_index"][j] == 0 and t["targets.labels"][j] == 3
            np.testing.assert_allclose(t["targets.boxes"][j], extent, atol=1.5)
            mask = t["targets.masks"][row, 0] == 1  # annotation 0 is instance 1
            assert (mask & on).sum() / (mask | on).sum() > 0.9
            points = t["targets.keypoints"][t["targets.keypoint_image"] == row]
            visible = t["targets.keypoint_visible"][t["targets.keypoint_image"] == row]
            for (x, y), v in zip(points, visible, strict=True):
                if v:  # a corner pixel's centre: inside the moved box
                    box = t["targets.boxes"][j]
                    assert (
                        box[0] - 1e-3 <= x <= box[2] + 1e-3 and box[1] - 1e-3 <= y <= box[3] + 1e-3
                    )
            seen += 1
    assert seen > N // 2


def _torch(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))


def test_resume_and_reshard_give_every_sample_the_same_targets(server):
    full = per_sample(stream(server))
    k = 13
    remaining = set(epoch_order(N, SEED, 0)[k:].tolist())
    halves = per_sample(stream(server, rank=0, world_size=2, start=k)
                        + stream(server, rank=1, world_size=2, start=k))  # fmt: skip
    thirds = per_sample(
        [f for r in range(3) for f in stream(server, rank=r, world_size=3, start=k)]
    )
    for resumed in (halves, thirds):
        assert set(resumed) == remaining
        assert all(resumed[i] == full[i] for i in remaining)


def test_paired_frames_carry_the_warped_label_map(server):
    for t, _ in stream(server, "seg"):
        assert t["targets.boxes"].shape == (0, 4)
        for row in range(len(t["indices"])):
            on = t["images"][row, 0] > 127
            mask = t["targets.masks"][row, 0]
            assert set(np.unique(mask).tolist()) <= {0, 9}
            union = ((mask == 9) | on).sum()
            assert union == 0 or ((mask == 9) & on).sum() / union > 0.9


def test_the_sdk_stream_yields_targets_per_sample(server):
    from augsvc_client import Client

    raw = per_sample(stream(server))
    with Client(server.url) as client:
        for batch in client.stream("shapes", "boxes", SEED, batch_size=8):
            assert len(batch.targets) == len(batch.indices)
            for index, moved in zip(batch.indices.tolist(), batch.targets, strict=True):
                assert moved["boxes"].tobytes() == raw[index][1]
                assert moved["masks"].tobytes() == raw[index][6]
                assert moved["keypoints"].shape == (1, 2, 2)  # one instance, two corners


def test_the_torch_dataset_yields_targets_with_each_batch(server):
    import torch
    from augsvc_client.torch_data import AugsvcIterableDataset

    raw = per_sample(stream(server))
    dataset = AugsvcIterableDataset(server.url, "shapes", "boxes", SEED, batch_size=8,
                                    rank=0, world_size=1)  # fmt: skip
    seen = 0
    for item in dataset:
        assert len(item["targets"]) == len(item["indices"])
        for index, moved in zip(item["indices"].tolist(), item["targets"], strict=True):
            assert isinstance(moved["boxes"], torch.Tensor)
            assert moved["boxes"].numpy().tobytes() == raw[index][1]
            seen += 1
    assert seen == N


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"kind": "coco", "path": "coco/images"}, "annotations"),
        ({"kind": "folder", "path": "coco/images", "annotations": "coco/instances.json"},
         "annotations"),
        ({"kind": "coco", "path": "coco/images", "annotations": "coco/missing.json"},
         "cannot be read"),
        ({"kind": "paired", "path": "coco"}, "images/ and masks/"),
        ({"kind": "coco", "path": "coco/images", "annotations": "../x.json"}, "'..'"),
    ],
)  # fmt: skip
def test_bad_registrations_say_why(server, spec, words):
    with server.client() as c:
        r = c.put("/v1/datasets/bad", json=spec)
    assert 400 <= r.status_code < 500, r.text
    assert words in r.json()["detail"], r.json()["detail"]
