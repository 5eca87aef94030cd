"""Decoding planned by the engine: each encoded image at the coarsest scale its sample
can use.

A sample's first warp, and so the antialiasing pre-shrink it needs, is known from
(recipe, seed, key) and the image's header before a pixel is decoded. A JPEG is then
decoded at 1/2, 1/4 or 1/8 where that pre-shrink allows (``engine.decode_scales``), the
engine warps the scaled pixels as the full image, and the decoded-pixel budget counts
the pixels really decoded. Every path that decodes for the engine (uploads, stream
batches, ``augsvc augment``) goes through here, so a sample's bytes are the same
whichever path, split, replica or resumed stream produced them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from augsvc.codec import ImageHeader, ScaledImage
from augsvc.engine import Plan, cpu_workers, decode_scales


@dataclass(frozen=True)
class PlannedDecode:
    headers: list[ImageHeader]
    scales: list[int]

    @property
    def pixels(self) -> int:
        """Pixels the decode will hold, read from the headers alone."""
        return sum(h.decoded_pixels(s) for h, s in zip(self.headers, self.scales, strict=True))

    def decode(self) -> list[ScaledImage]:
        """Decode every image at its scale. Decoders release the GIL, so the engine's
        CPU workers (idle until augmentation starts) decode side by side."""
        return list(cpu_workers().map(ImageHeader.decode_scaled, self.headers, self.scales))


def plan_decode(
    plan: Plan, headers: list[ImageHeader], *, seed: int, keys: Sequence[int] | np.ndarray
) -> PlannedDecode:
    """The scale each image decodes at for its sample (key) of this plan and seed."""
    if not headers:
        return PlannedDecode([], [])
    full_hw = np.array([h.displayed_hw for h in headers], dtype=np.int64)
    scales = decode_scales(plan, seed, keys, full_hw)
    return PlannedDecode(
        headers, [int(s) if h.scalable else 1 for h, s in zip(headers, scales, strict=True)]
    )
