"""augsvc's boxes against torchvision v2's BoundingBoxes, given the same parameters:
the peer most detection code already trusts. Same clamping (torchvision's "hard": to
the canvas); boxes stay in view so torchvision's keep-everything matches our drop rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from augsvc.maths import geometry
from tests.targets_helpers import run
from tests.test_targets_engine import targets_for

H, W = 60, 80
TOLERANCE = 0.5
BOXES = np.array([[10, 12, 30, 40], [35.5, 20.25, 70, 50], [25, 25, 55, 35], [2, 3, 78, 57]])


def torchvision_boxes() -> tv_tensors.BoundingBoxes:
    return tv_tensors.BoundingBoxes(
        torch.tensor(BOXES, dtype=torch.float64), format="XYXY", canvas_size=(H, W),
        clamping_mode="hard",
    )  # fmt: skip


def ours(ops: list[dict], key: int = 0):
    image = torch.zeros(1, 3, H, W, dtype=torch.uint8)
    result, (moved,) = run(ops, image, [targets_for(BOXES)], keys=np.array([key]))
    assert moved.box_index.tolist() == list(range(len(BOXES)))
    return moved.boxes, result.params


def agree(mine: np.ndarray, theirs: torch.Tensor) -> None:
    np.testing.assert_allclose(mine, theirs.double().numpy(), atol=TOLERANCE)


def test_hflip_and_vflip():
    agree(ours([{"op": "hflip", "p": 1.0}])[0], TF.horizontal_flip(torchvision_boxes()))
    agree(ours([{"op": "vflip", "p": 1.0}])[0], TF.vertical_flip(torchvision_boxes()))


@pytest.mark.parametrize("angle", [-90.0, -37.5, 12.0, 90.0, 180.0])
def test_rotate(angle):
    agree(
        ours([{"op": "rotate", "degrees": [angle, angle]}])[0],
        TF.rotate(torchvision_boxes(), angle),
    )


@pytest.mark.parametrize("key", range(6))
def test_affine_with_drawn_angle_translation_and_scale(key):
    """Shear is left out: Kornia's shear matrix (which the op follows) and torchvision's
    are different maps, so there is no one parameter to give both."""
    op = {"op": "affine", "degrees": 25, "translate": [0.1, 0.1], "scale": [0.8, 1.2]}
    boxes, params = ours([op], key)
    expected = TF.affine(
        torchvision_boxes(),
        angle=float(params["ops.0.angle"][0]),
        translate=[float(params["ops.0.tx"][0]), float(params["ops.0.ty"][0])],
        scale=float(params["ops.0.scale"][0]),
        shear=[0.0, 0.0],
    )
    agree(boxes, expected)


@pytest.mark.parametrize("key", range(6))
def test_resized_crop_with_drawn_box(key):
    boxes_image = torch.zeros(1, 3, H, W, dtype=torch.uint8)
    op = {"op": "random_resized_crop", "size": [48, 64], "scale": [0.6, 1.0]}
    result, (moved,) = run([op], boxes_image, [targets_for(BOXES)], keys=np.array([key]))
    p = {k: int(v[0]) for k, v in result.params.items() if k.startswith("ops.0.")}
    expected = TF.resized_crop(
        torchvision_boxes(),
        p["ops.0.top"],
        p["ops.0.left"],
        p["ops.0.height"],
        p["ops.0.width"],
        [48, 64],
    )
    # torchvision keeps boxes the crop leaves out as empty ones; ours drops them
    keep = moved.box_index
    agree(moved.boxes, expected[keep])


@pytest.mark.parametrize("key", range(6))
def test_perspective_with_drawn_corners(key):
    """torchvision applies its start/end points to box corners as given, so they are
    given in continuous coordinates: the engine's pixel-centre corners plus 0.5."""
    boxes, params = ours([{"op": "perspective", "distortion_scale": 0.4, "p": 1.0}], key)
    start = geometry.corners(np.array([float(H)]), np.array([float(W)]))[0]
    end = start + params["ops.0.shift"][0]
    expected = TF.perspective(
        torchvision_boxes(), startpoints=(start + 0.5).tolist(), endpoints=(end + 0.5).tolist()
    )
    agree(boxes, expected)
