"""Decoding only the part of a JPEG that a sample reads.

A random crop of a large photo reads a fraction of it, and its region is known before
decoding (``engine.source_boxes``). libjpeg-turbo can skip the rows outside a region
(entropy-decoding them only, with no inverse DCT, upsampling or colour conversion) and
crop the columns around it; Pillow and torchvision expose neither, so
``_jpeg_region.c`` does, against the system's libjpeg-turbo. Only a window around the
region is allocated and decoded, so memory follows the crop too. It is built at install
where a C compiler and libjpeg's headers are present (``make install`` adds them on
Debian); without it :data:`AVAILABLE` is False and JPEGs decode whole, to the same
pixels.
"""

from __future__ import annotations

import numpy as np
import torch

try:
    from augsvc.codec import _jpeg_region  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the build
    _jpeg_region = None

AVAILABLE = _jpeg_region is not None

Box = tuple[int, int, int, int]  # top, left, bottom (exclusive), right (exclusive)


def decode_window(data: bytes, scale: int, box: Box) -> tuple[torch.Tensor, Box] | None:
    """The pixels of the JPEG at 1/``scale`` (stored frame) in a window around ``box``
    (top, left, bottom, right), as a (C, h, w) view of (h, w, C) memory, and where that
    window lies; within ``box`` they are exactly a whole decode's. None when the
    decoder is not built, the image is not plain 8-bit grey or colour, or libjpeg
    reported anything at all (corrupt data, a truncated file): the caller then decodes
    whole, which diagnoses the file as it always has."""
    if _jpeg_region is None:
        return None
    planned = _jpeg_region.window(data, scale, *box)
    if planned is None:
        return None
    *window, channels = planned
    top, left, bottom, right = window
    out = np.empty((bottom - top, right - left, channels), dtype=np.uint8)  # all written
    if not _jpeg_region.decode_window(data, scale, *window, out):
        return None
    return torch.from_numpy(out).permute(2, 0, 1), (top, left, bottom, right)
