"""Label maps through a sample's matrix: nearest-neighbour, so no label is invented."""

from __future__ import annotations

import numpy as np
import torch

from augsvc.engine import plan_regions
from augsvc.maths import kernels


def warp_mask(
    mask: torch.Tensor,
    matrix: np.ndarray,
    out_hw: tuple[int, int],
    *,
    padding_mode: str,
    ignore_index: int,
) -> torch.Tensor:
    """(H,W) integer labels through the engine's pixel-centre ``matrix`` (3,3) to
    ``out_hw``, the image's own sampling grid with nearest-neighbour reads: every
    output label is a source label, or ``ignore_index`` where constant padding reads
    outside the source (border and reflection padding follow the image's rules).

    As the image's warp, only the source region the output reads is converted and
    warped (``engine.region``), so a small crop of a large mask costs what the crop
    costs. Labels travel as float32, exact for every 16-bit value; the warp runs on the
    CPU so a tie between two source pixels resolves the same on every machine. No
    antialiasing: averaging labels would invent ones that are not there."""
    regions = plan_regions(
        np.asarray(matrix, dtype=np.float64)[None],
        np.asarray([out_hw], dtype=np.int64),
        np.asarray([mask.shape], dtype=np.int64),
        mode="nearest",
        padding_mode=padding_mode,
        antialias=False,
    )
    top, left, bottom, right = regions.boxes[0].tolist()
    src = mask[top:bottom, left:right].to("cpu", torch.float32)[None, None]
    out = kernels.warp_source(
        src,
        1,
        regions.matrices,
        out_hw,
        mode="nearest",
        padding_mode=padding_mode,
        fill=(ignore_index,),
    )
    fits = ignore_index <= torch.iinfo(mask.dtype).max
    return out[0, 0].to(mask.dtype if fits else torch.int32)
