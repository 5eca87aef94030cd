"""Boxes through a sample's matrix: formats, corners or ellipse, clipping, visibility."""

from __future__ import annotations

from typing import Literal

import numpy as np

BoxFormat = Literal["xyxy", "xywh", "cxcywh"]
BOX_FORMATS: tuple[BoxFormat, ...] = ("xyxy", "xywh", "cxcywh")
#: Points on a box's inscribed ellipse for the ellipse method: the enclosing box of
#: the polygon falls short of the ellipse's by at most 1 - cos(pi / 360) of a radius.
ELLIPSE_POINTS = 360
#: Mapped points this close to the camera plane (or behind it) have no finite place.
_MIN_W = 1e-9


def to_xyxy(boxes: np.ndarray, fmt: BoxFormat) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if fmt == "xywh":
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    if fmt == "cxcywh":
        return np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)
    return b.copy()


def continuous(matrix: np.ndarray) -> np.ndarray:
    """A pixel-centre matrix (the engine's: centres at integers) as one on continuous
    coordinates (centres at i + 0.5): T(0.5) · M · T(-0.5)."""
    shift = np.eye(3)
    shift[:2, 2] = 0.5
    back = np.eye(3)
    back[:2, 2] = -0.5
    return shift @ matrix @ back


def project(m: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 2) points through one 3x3 matrix, and which stayed in front of the camera
    (a homography can send a far point to infinity or mirror it behind)."""
    homog = np.concatenate([points, np.ones((*points.shape[:-1], 1))], axis=-1) @ m.T
    w = homog[..., 2]
    front = w > _MIN_W
    return homog[..., :2] / np.where(front, w, 1.0)[..., None], front


def move_boxes(
    m: np.ndarray, boxes: np.ndarray, method: Literal["corners", "ellipse"]
) -> tuple[np.ndarray, np.ndarray]:
    """(B,4) xyxy boxes through the continuous matrix ``m``: the box enclosing the
    moved corners (a moved rectangle's exact bounds, as lines stay lines) or the
    moved inscribed ellipse. Also which boxes have a finite image."""
    x1, y1, x2, y2 = boxes.T
    if method == "corners":
        points = np.stack(
            [np.stack([x1, y1], -1), np.stack([x2, y1], -1), np.stack([x2, y2], -1),
             np.stack([x1, y2], -1)], 1
        )  # fmt: skip
    else:
        t = np.linspace(0, 2 * np.pi, ELLIPSE_POINTS, endpoint=False)
        cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
        points = np.stack(
            [cx[:, None] + rx[:, None] * np.cos(t), cy[:, None] + ry[:, None] * np.sin(t)], -1
        )
    moved, front = project(m, points)
    finite = front.all(axis=1)
    out = np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)
    return np.where(finite[:, None], out, 0.0), finite


def clip(boxes: np.ndarray, height: float, width: float) -> np.ndarray:
    """Boxes cut to the canvas [0, width] x [0, height] (a box wholly outside becomes
    one with a negative extent, which :func:`visibility` counts as unseen)."""
    out = boxes.copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, width)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, height)
    inside = (
        (boxes[:, 2] >= 0) & (boxes[:, 0] <= width) & (boxes[:, 3] >= 0) & (boxes[:, 1] <= height)
    )
    return np.where(inside[:, None], out, -1.0)


def area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def visibility(moved: np.ndarray, clipped: np.ndarray) -> np.ndarray:
    """The fraction of each moved box's area inside the canvas. A box of no area (a
    line or a point, as some datasets hold) counts as wholly visible when it touches
    the canvas and unseen when not."""
    full = area(moved)
    touches = (
        (clipped[:, 2] >= clipped[:, 0]) & (clipped[:, 3] >= clipped[:, 1]) & (clipped[:, 0] >= 0)
    )
    return np.where(
        full > 0, area(clipped) / np.where(full > 0, full, 1.0), touches.astype(np.float64)
    )


def occluded_area(boxes: np.ndarray, occluders: np.ndarray) -> np.ndarray:
    """Per box, the area of it the (R,4) xyxy ``occluders`` cover together: where two
    overlap, the pixels are hidden once, as the image shows them.

    Each box's rectangles (clipped to it) cut it into the cells between their sorted
    edges; a cell is covered or not as a whole, so the union is a sum over cells."""
    if not len(occluders) or not len(boxes):
        return np.zeros(len(boxes))
    lo = np.maximum(boxes[:, None, :2], occluders[None, :, :2])  # (B, R, 2)
    hi = np.maximum(np.minimum(boxes[:, None, 2:], occluders[None, :, 2:]), lo)
    edges = np.sort(np.concatenate([lo, hi], axis=1), axis=1)  # (B, 2R, 2)
    size = np.diff(edges, axis=1)  # (B, 2R - 1, 2): each cell's width and height
    mid = (edges[:, 1:] + edges[:, :-1]) / 2
    # (B, R, cells) per axis: does rectangle r span cell c's centre?
    spans = (lo[:, :, None, :] <= mid[:, None]) & (mid[:, None] < hi[:, :, None, :])
    covered = (spans[:, :, :, None, 1] & spans[:, :, None, :, 0]).any(axis=1)  # (B, y, x)
    return (covered * size[:, :, None, 1] * size[:, None, :, 0]).sum(axis=(1, 2))


def survivors(
    fraction: np.ndarray, visible_area: np.ndarray, *, min_visibility: float, min_area: float
) -> np.ndarray:
    """Which boxes a sample keeps: some of it in the output, at least ``min_visibility``
    of its moved area there, and at least ``min_area`` output pixels of it."""
    return (fraction > 0) & (fraction >= min_visibility) & (visible_area >= min_area)
