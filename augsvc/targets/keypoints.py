"""Keypoints through a sample's matrix, with visibility and left/right swaps."""

from __future__ import annotations

import numpy as np

from augsvc.targets.boxes import project


def move_keypoints(
    m: np.ndarray,
    points: np.ndarray,
    visible: np.ndarray,
    out_hw: tuple[int, int],
    flip_pairs: tuple[tuple[int, int], ...],
) -> tuple[np.ndarray, np.ndarray]:
    """(I,P,2) points through the continuous matrix ``m``. A point stays visible when it
    was and lands inside the output, [0, W) x [0, H).

    When the sample is mirrored (its matrix reverses orientation: one flip, not two,
    which make a half turn), each ``flip_pairs`` pair swaps places, so the point stored
    as "left wrist" is the one that now looks like a left wrist."""
    if points.size == 0:
        return points.copy(), visible.copy()
    moved, finite_points = project(m, points)
    h, w = out_hw
    x, y = moved[..., 0], moved[..., 1]
    seen = visible & finite_points & (x >= 0) & (x < w) & (y >= 0) & (y < h)
    if flip_pairs and np.linalg.det(m) < 0:
        order = np.arange(points.shape[1])
        for a, b in flip_pairs:
            order[a], order[b] = order[b], order[a]
        moved, seen = moved[:, order], seen[:, order]
    return np.where(finite_points[..., None], moved, 0.0), seen
