"""Decoding only the part of a JPEG that a sample reads.

A random crop of a large photo reads a fraction of it, and its region is known before
decoding (``engine.source_boxes``). libjpeg-turbo can skip the rows above a region
(entropy-decoding them only, with no inverse DCT, upsampling or colour conversion), stop
after its last row and crop the columns around it; Pillow and torchvision expose none
of that, so ``_jpeg_region.c`` does, against the system's libjpeg-turbo. It is built at
install where a C compiler and libjpeg's headers are present (``make install`` adds
them on Debian); without it :data:`AVAILABLE` is False and JPEGs decode whole, to the
same pixels.
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


def decode_box(
    data: bytes, scale: int, hw: tuple[int, int], channels: int, box: Box
) -> torch.Tensor | None:
    """The stored-frame image at 1/``scale`` ((C, H, W) = (``channels``, *``hw``), a
    view of (H, W, C) memory) in which ``box`` holds exactly what a whole decode gives
    and the rest is mostly zeros. None when the decoder is not built or libjpeg reported
    anything at all (corrupt data, a truncated file): the caller then decodes whole,
    which diagnoses the file as it always has."""
    if _jpeg_region is None:
        return None
    canvas = np.zeros((*hw, channels), dtype=np.uint8)  # pages untouched stay unallocated
    if _jpeg_region.decode_into(data, scale, *box, canvas) is None:
        return None
    return torch.from_numpy(canvas).permute(2, 0, 1)


def ends_with_eoi(data: bytes) -> bool:
    """Whether the file ends with JPEG's end-of-image marker. Decoding stops after the
    region's last row, so a file cut short further down would go unnoticed; one that
    does not end this way is decoded whole (and refused if truncated)."""
    return data[-2:] == b"\xff\xd9"
