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
import torch

from augsvc.codec import ImageHeader, ScaledImage
from augsvc.codec.device_decode import decode_on_device
from augsvc.engine import Plan, cpu_workers, decode_scales


@dataclass(frozen=True)
class PlannedDecode:
    headers: list[ImageHeader]
    scales: list[int]

    @property
    def pixels(self) -> int:
        """Pixels the decode will hold, read from the headers alone."""
        return sum(h.decoded_pixels(s) for h, s in zip(self.headers, self.scales, strict=True))

    def decode(self, device: torch.device | None = None) -> list[ScaledImage]:
        """Decode every image at its scale. Decoders release the GIL, so the engine's
        CPU workers (idle until augmentation starts) decode side by side. With a CUDA
        ``device``, the plain JPEGs decoded whole go to nvJPEG in one batch
        (:mod:`augsvc.codec.device_decode`) and the rest to the CPU workers."""
        on_device: list[torch.Tensor | None] = [None] * len(self.headers)
        if device is not None and device.type == "cuda":
            whole = [i for i, s in enumerate(self.scales) if s == 1]
            for i, pixels in zip(
                whole, decode_on_device([self.headers[i] for i in whole], device), strict=True
            ):
                on_device[i] = pixels
        rest = [i for i, pixels in enumerate(on_device) if pixels is None]
        decoded = dict(
            zip(
                rest,
                cpu_workers().map(
                    ImageHeader.decode_scaled,
                    [self.headers[i] for i in rest],
                    [self.scales[i] for i in rest],
                ),
                strict=True,
            )
        )
        return [
            decoded[i] if pixels is None else ScaledImage(pixels, h.displayed_hw, None)
            for i, (h, pixels) in enumerate(zip(self.headers, on_device, strict=True))
        ]


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
