"""Decoding planned by the engine: each encoded image at the coarsest scale its sample
can use, and of a JPEG only the region its sample reads.

A sample's first warp, and so the antialiasing pre-shrink it needs, is known from
(recipe, seed, key) and the image's header before a pixel is decoded. A JPEG is then
decoded at 1/2, 1/4 or 1/8 where that pre-shrink allows (``engine.decode_scales``), the
engine warps the scaled pixels as the full image, and the decoded-pixel budget counts
the whole image's pixels at that scale. Where the region decoder is built
(``codec.jpeg_region``), only the box the engine will read (``engine.source_boxes``)
is decoded, to exactly the pixels a whole decode has there, so the output is the same
with or without it. Every path that decodes for the engine (uploads, stream batches,
``augsvc augment``) goes through here, so a sample's bytes are the same whichever
path, split, replica or resumed stream produced them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from augsvc.codec import ImageHeader, ScaledImage, jpeg_region
from augsvc.codec.device_decode import decode_on_device
from augsvc.engine import Plan, cpu_workers, decode_scales, source_boxes, starts_with_warp


@dataclass(frozen=True)
class PlannedDecode:
    headers: list[ImageHeader]
    scales: list[int]
    #: Per image, the box of its scaled, displayed pixels its sample reads (None: all).
    boxes: list[tuple[int, int, int, int] | None] | None = None

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
        boxes = self.boxes or [None] * len(self.headers)

        def on_cpu(i: int) -> ScaledImage:
            header, scale, box = self.headers[i], self.scales[i], boxes[i]
            return header.decode_scaled(scale) if box is None else header.decode_region(scale, box)

        decoded = dict(zip(rest, cpu_workers().map(on_cpu, rest), strict=True))
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
    scales = [
        int(s) if h.scalable else 1
        for h, s in zip(headers, decode_scales(plan, seed, keys, full_hw), strict=True)
    ]
    if not (jpeg_region.AVAILABLE and starts_with_warp(plan)):
        return PlannedDecode(headers, scales)
    pairs = list(zip(headers, scales, strict=True))
    boxes = source_boxes(
        plan,
        seed,
        keys,
        full_hw,
        [h.scaled_map(s) for h, s in pairs],
        np.array([h.decoded_hw(s) for h, s in pairs], dtype=np.int64),
    )
    return PlannedDecode(headers, scales, [tuple(b) for b in boxes.tolist()])
