"""torchvision's random box search, shared by random_resized_crop and random_erasing."""

from __future__ import annotations

import numpy as np

from augsvc.maths.rng import Draws

ATTEMPTS = 10  # torchvision's tries at a random box before falling back


def random_box(
    d: Draws,
    height: np.ndarray,
    width: np.ndarray,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    *,
    transpose: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """torchvision's box search, all ten attempts at once: area fraction from ``scale``
    (slots 1-10), log-uniform aspect ratio from ``ratio`` (slots 11-20), position
    (slots 21-22). Returns (top, left, h, w, found). ``transpose`` swaps which side
    the ratio widens: RandomResizedCrop reads it as w/h, RandomErasing as h/w."""
    area = (height * width)[:, None]
    fr = np.stack([d.uniform(1 + a, *scale) for a in range(ATTEMPTS)], 1)
    ar = np.stack([d.log_uniform(11 + a, *ratio) for a in range(ATTEMPTS)], 1)
    long_side = np.round(np.sqrt(area * fr * ar))
    short_side = np.round(np.sqrt(area * fr / ar))
    bh, bw = (long_side, short_side) if transpose else (short_side, long_side)
    if transpose:  # RandomErasing requires strictly smaller boxes
        ok = (bh < height[:, None]) & (bw < width[:, None]) & (bh > 0) & (bw > 0)
    else:
        ok = (bh <= height[:, None]) & (bw <= width[:, None]) & (bh > 0) & (bw > 0)
    found = ok.any(1)
    first = np.argmax(ok, 1)
    rows = np.arange(d.n)
    bh, bw = bh[rows, first], bw[rows, first]
    top = np.floor(d.uniform(21) * (height - bh + 1))
    left = np.floor(d.uniform(22) * (width - bw + 1))
    return top, left, bh, bw, found
