"""Encoding augmented tensors as PNG or JPEG, and the bundled sample photo."""

from __future__ import annotations

import io
from functools import lru_cache
from importlib import resources

import torch
from PIL import Image

from augsvc.codec.decode import contiguous_pixels


def encode_png(img: torch.Tensor, *, compress_level: int = 1) -> bytes:
    """Encode a uint8 (C, H, W) tensor, C in {1, 3, 4}, as PNG.

    Pillow, not torchvision: torchvision cannot write RGBA and is no faster. Level 1 is the
    default because this runs on the response path, and on photos zlib's higher levels
    cost several times the CPU for a few per cent fewer bytes.
    """
    return _save(_tensor_to_image(img), "PNG", compress_level=compress_level)


def encode_jpeg(img: torch.Tensor, quality: int = 90) -> bytes:
    """Encode a uint8 (C, H, W) tensor, C in {1, 3, 4}, as JPEG; alpha is dropped (JPEG has
    none). Pillow measured faster than torchvision.io.encode_jpeg here."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    if img.ndim == 3 and img.shape[0] == 4:
        img = img[:3]
    return _save(_tensor_to_image(img), "JPEG", quality=quality)


def _tensor_to_image(img: torch.Tensor) -> Image.Image:
    """A bad tensor here is a bug in the caller, not bad input, hence ValueError (a 500)."""
    if img.dtype != torch.uint8 or img.ndim != 3 or img.shape[0] not in (1, 3, 4):
        raise ValueError(
            f"expected a uint8 (C, H, W) tensor with C in 1, 3, 4; "
            f"got {img.dtype} {tuple(img.shape)}"
        )
    # Interleave planes with Image.merge: a CHW->HWC copy in torch or numpy costs about
    # ten times as much, half of a whole JPEG encode.
    planes = contiguous_pixels(img.detach().cpu()).numpy()
    _, height, width = planes.shape
    bands = [Image.frombuffer("L", (width, height), plane, "raw", "L", 0, 1) for plane in planes]
    if len(bands) == 1:
        return bands[0]
    return Image.merge("RGB" if len(bands) == 3 else "RGBA", bands)


def _save(image: Image.Image, fmt: str, **options: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@lru_cache(maxsize=1)
def sample_photo_bytes() -> bytes:
    """The bundled 500x375 JPEG photo (``augsvc/data/sample.jpg``, CC0) used by previews."""
    return (resources.files("augsvc") / "data" / "sample.jpg").read_bytes()
