"""Scenes whose truth is known (filled rectangles and dots on black) and a runner that
augments images and moves their targets as the service does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from augsvc.engine import AugmentResult, augment, compile_plan
from augsvc.recipes import parse_recipe
from augsvc.targets.move import move_batch
from augsvc.targets.types import ImageTargets, MovedTargets


def run(
    ops: list[dict], images: torch.Tensor, targets: list[ImageTargets | None], *, seed: int = 0,
    keys: np.ndarray | None = None, options: dict | None = None, **output: object,
) -> tuple[AugmentResult, list[MovedTargets | None]]:  # fmt: skip
    document: dict = {"ops": ops}
    if output:
        document["output"] = output
    if options is not None:
        document["targets"] = options
    plan = compile_plan(parse_recipe(document))
    result = augment(plan, images, seed=seed, keys=keys)
    return result, move_batch(plan, result, targets)


@dataclass
class Scene:
    """One image: a filled rectangle (channel 0, label 1 in the mask) and a 3x3 dot
    (channel 1) centred on a pixel."""

    image: torch.Tensor
    targets: ImageTargets
    box: np.ndarray  # xyxy, continuous pixels
    dot: tuple[float, float]  # continuous (x, y) of the dot's centre


def scene(rng: np.random.Generator, height: int, width: int) -> Scene:
    h, w = int(rng.integers(12, height * 3 // 5)), int(rng.integers(12, width * 3 // 5))
    top, left = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
    row, col = int(rng.integers(4, height - 4)), int(rng.integers(4, width - 4))
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    image[0, top : top + h, left : left + w] = 255
    image[1, row - 1 : row + 2, col - 1 : col + 2] = 255
    mask = torch.zeros(height, width, dtype=torch.uint8)
    mask[top : top + h, left : left + w] = 1
    box = np.array([[left, top, left + w, top + h]], dtype=np.float64)
    dot = (col + 0.5, row + 0.5)
    targets = ImageTargets(
        boxes=box,
        labels=np.array([7]),
        keypoints=np.array([[dot]], dtype=np.float64),
        keypoint_visible=np.ones((1, 1), dtype=bool),
        mask=mask,
    )
    return Scene(image, targets, box[0], dot)


def pixel_extent(on: torch.Tensor) -> np.ndarray | None:
    """The continuous box covering every True pixel of (H, W), or None."""
    if not bool(on.any()):
        return None
    ys, xs = on.nonzero(as_tuple=True)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def centroid(weights: torch.Tensor) -> tuple[float, float] | None:
    """The continuous (x, y) centre of mass of (H, W) intensities, or None."""
    w = weights.double()
    total = float(w.sum())
    if total == 0:
        return None
    ys = torch.arange(w.shape[0], dtype=torch.float64)[:, None]
    xs = torch.arange(w.shape[1], dtype=torch.float64)[None, :]
    return float((w * xs).sum()) / total + 0.5, float((w * ys).sum()) / total + 0.5


def corners_box(matrix: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The reference: the box's four corners through the engine's pixel-centre matrix
    (shifted to continuous coordinates), enclosed."""
    x1, y1, x2, y2 = box
    pts = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]]) - 0.5
    homog = np.concatenate([pts, np.ones((4, 1))], 1) @ matrix.T
    moved = homog[:, :2] / homog[:, 2:] + 0.5
    return np.concatenate([moved.min(0), moved.max(0)])
