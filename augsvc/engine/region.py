"""Region-first warping: the part of each source a warp reads, found from its matrix
before any pixel is touched.

A sample's first warp is known in full once its parameters are drawn: the composed
matrix, the output size and the antialiasing pre-shrink factor. The output pixel grid,
mapped back through the matrix, covers a convex quadrilateral of the source; its
bounding box, widened by the interpolation's taps and a margin, is everything the warp
reads. Only that box is converted, box filtered and warped, with the matrix moved to
its corner, so a 224x224 crop of a 4000x3000 photo costs what the crop costs.

The box is aligned to the pre-shrink's k x k blocks (the last, at the image's bottom
or right edge, may be partial), so the shrunk region holds exactly the shrunk full
image's pixels there, and it stops at the image's edges, so padding sees the same
edges: constant and border padding read nothing beyond the box, and an axis on which
reflection would fold samples back in is taken whole. What is
left between the two paths is the float rounding of sampling positions measured from
another origin, a resampling error the tests bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from augsvc.maths import geometry
from augsvc.maths.kernels import shrink_factor

#: Source pixels read beyond floor(x) of a sampling position x, before and after it.
TAPS = {"nearest": (0, 1), "bilinear": (0, 1), "bicubic": (1, 2)}
#: Extra pixels on every side, far more than the float error of a sampling position.
MARGIN = 2


class ScaledSource(Protocol):
    """An image decoded at a reduced scale (a JPEG's DCT scaling, see
    ``augsvc.codec.ScaledImage``): its pixels, the size of the full image its sample
    was drawn for, and the map from full-image pixel coordinates to ``pixels``' ones
    (None: the pixels are the full image). A region decode also has ``region`` (where
    ``pixels`` lie in the scaled image) and ``frame_hw`` (that image's size)."""

    @property
    def pixels(self) -> torch.Tensor: ...

    @property
    def full_hw(self) -> tuple[int, int]: ...

    @property
    def to_pixels(self) -> np.ndarray | None: ...


@dataclass(frozen=True)
class Regions:
    """Per sample: the pre-shrink ``factors`` (N,), the source ``boxes`` (N,4) as
    top, left, bottom, right (exclusive) in source pixels, multiples of the factor or
    the image's edge, and ``matrices`` (N,3,3) mapping the shrunk region's pixels to
    output pixels."""

    factors: np.ndarray
    boxes: np.ndarray
    matrices: np.ndarray


def plan_regions(
    matrix: np.ndarray,
    out_hw: np.ndarray,
    src_hw: np.ndarray,
    *,
    mode: str,
    padding_mode: str,
    antialias: bool,
) -> Regions:
    """The source region each sample's warp reads; every input is per sample: forward
    ``matrix`` (N,3,3), ``out_hw`` (N,2), ``src_hw`` (N,2). A function of the sample
    alone, so a sample's region never depends on its batch."""
    n = len(matrix)
    src_hw = np.asarray(src_hw, dtype=np.int64)
    h, w = src_hw[:, 0], src_hw[:, 1]
    factors = shrink_factor(matrix, h, w) if antialias else np.ones(n, dtype=np.int64)
    shrunk = geometry.eye(n)
    shrunk[:, 0, 0] = shrunk[:, 1, 1] = factors
    shrunk[:, 0, 2] = shrunk[:, 1, 2] = (factors - 1) / 2
    pooled = matrix @ shrunk  # shrunk-image pixel -> output pixel
    pooled_hw = -(-src_hw // factors[:, None])  # a partial edge block is a pixel too
    out_hw = np.asarray(out_hw, dtype=np.int64)
    corners = geometry.corners(out_hw[:, 0].astype(np.float64), out_hw[:, 1].astype(np.float64))
    homog = np.concatenate([corners, np.ones((n, 4, 1))], axis=-1)
    back = homog @ np.swapaxes(np.linalg.inv(pooled), 1, 2)
    # A homography whose horizon crosses the output maps part of it from behind the
    # camera: no finite box holds what it reads, so such a sample reads everything.
    finite = (back[..., 2] > 1e-9).all(axis=1)
    points = back[..., :2] / np.where(finite[:, None, None], back[..., 2:3], 1.0)
    before, after = TAPS[mode]
    lo = np.floor(points.min(axis=1)) - before - MARGIN  # (N,2) as x, y
    hi = np.floor(points.max(axis=1)) + after + MARGIN
    size = pooled_hw[:, ::-1].astype(np.float64)  # (N,2) as width, height
    last = size - 1
    whole = ~finite[:, None] | (
        (padding_mode == "reflection") & ((lo < 0) | (hi > last))
    )  # reflection folds samples back from the far side of the axis
    lo = np.where(whole, 0, np.clip(lo, 0, last))
    hi = np.where(whole, last, np.clip(hi, 0, last))
    # At least two pixels per axis that has them: a one-pixel axis is normalised as a
    # single point, which would read it wherever the warp samples.
    short = (hi - lo < 1) & (size > 1)
    lo = np.where(short & (hi >= last), last - 1, lo)
    hi = np.where(short & (hi < last), lo + 1, hi)
    lo, hi = lo.astype(np.int64), hi.astype(np.int64)
    k = factors
    ends = np.minimum((hi[:, ::-1] + 1) * k[:, None], src_hw)  # (N,2) bottom, right
    boxes = np.stack([lo[:, 1] * k, lo[:, 0] * k, ends[:, 0], ends[:, 1]], 1)
    corner = lo.astype(np.float64)
    matrices = pooled @ geometry.translation(corner[:, 0], corner[:, 1])
    return Regions(factors=factors, boxes=boxes, matrices=matrices)


def source_matrices(matrix: np.ndarray, to_pixels: list[np.ndarray | None]) -> np.ndarray:
    """Each sample's first-warp matrix re-expressed on the pixels it was given: a full
    image keeps its matrix, a scaled decode composes the inverse of its map."""
    out = matrix.copy()
    for i, m in enumerate(to_pixels):
        if m is not None:
            out[i] = matrix[i] @ np.linalg.inv(m)
    return out


def decode_scales(
    matrix: np.ndarray, full_hw: np.ndarray, *, antialias: bool, choices: tuple[int, ...]
) -> np.ndarray:
    """The coarsest decode scale (one of ``choices``; 1 always allowed) each sample's
    first warp can use: the largest that divides its antialiasing pre-shrink factor k,
    so a decoder's downscaling (JPEG's DCT scaling) replaces exactly part of the box
    filter and the warp then shrinks the scaled pixels by k / scale, the same total.

    A scale that does not divide k would leave the warp a different shrink: decoding
    at 1/2 for k = 3 and warping the rest aliased visibly (5 grey levels from the full
    decode's output on photos, where dividing scales stay under 1)."""
    n = len(matrix)
    if not antialias:
        return np.ones(n, dtype=np.int64)
    full_hw = np.asarray(full_hw, dtype=np.int64)
    factors = shrink_factor(matrix, full_hw[:, 0], full_hw[:, 1])
    scales = np.ones(n, dtype=np.int64)
    for scale in sorted(set(choices)):
        scales = np.where(factors % scale == 0, scale, scales)
    return scales
