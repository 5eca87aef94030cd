"""Images in any form a user holds them, turned into an augment request body.

Accepted, alone or in a list: file paths, encoded bytes (JPEG, PNG, WebP, ...), PIL
images, numpy uint8 arrays ((H, W), (H, W, C) or (C, H, W); a 4-D array is a batch,
(N, H, W, C) or (N, C, H, W)), and torch uint8 tensors ((C, H, W), or (N, C, H, W) as a
batch). Layout rule for numpy: channels-last when the last axis has 1, 3 or 4 entries,
else channels-first; torch tensors are always channels-first.

The efficient body is chosen: decoded pixels of one shape travel as a single
``application/x-safetensors`` tensor (no encode on the client, no decode on the server);
encoded files travel untouched as multipart parts. A mix, or pixels of different
shapes, goes as multipart with the pixel images encoded as lossless PNG (needs Pillow,
the ``images`` extra).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .wire import ImagesBody

CHANNELS = (1, 3, 4)

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
    (b"BM", "image/bmp", ".bmp"),
    (b"II*\x00", "image/tiff", ".tif"),
    (b"MM\x00*", "image/tiff", ".tif"),
    (b"II+\x00", "image/tiff", ".tif"),  # BigTIFF
    (b"MM\x00+", "image/tiff", ".tif"),
)


@dataclass(frozen=True)
class Encoded:
    """An encoded image file: sent as it is."""

    data: bytes
    filename: str
    content_type: str


@dataclass(frozen=True)
class ImagePayload:
    """An augment request body: exactly one of ``tensor`` (safetensors) or ``files``."""

    count: int
    tensor: ImagesBody | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None


def sniff(data: bytes) -> tuple[str, str]:
    """(content type, file suffix) from an encoded image's first bytes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", ".webp"
    for magic, content_type, suffix in _MAGIC:
        if data.startswith(magic):
            return content_type, suffix
    return "application/octet-stream", ""


def _is_torch(value: object) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _is_pil(value: object) -> bool:
    return type(value).__module__.startswith("PIL.") and hasattr(value, "getbands")


def _as_uint8(array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype != np.uint8:
        raise TypeError(f"{what} must be uint8, got {array.dtype}")
    return array


def array_to_chw(array: np.ndarray) -> np.ndarray:
    """One numpy image as (C, H, W) by the layout rule in the module docstring."""
    _as_uint8(array, "image array")
    if array.ndim == 2:
        return array[None]
    if array.ndim != 3:
        raise ValueError(f"an image array must be 2-D or 3-D, got shape {array.shape}")
    if array.shape[-1] in CHANNELS:
        return np.moveaxis(array, -1, 0)
    if array.shape[0] in CHANNELS:
        return array
    raise ValueError(f"cannot tell the channel axis of shape {array.shape} (1, 3 or 4 channels)")


def tensor_to_chw(tensor: Any) -> np.ndarray:
    """One torch (C, H, W) or (H, W) uint8 tensor as a numpy (C, H, W) array."""
    array = _as_uint8(tensor.detach().cpu().numpy(), "image tensor")
    if array.ndim == 2:
        return array[None]
    if array.ndim != 3 or array.shape[0] not in CHANNELS:
        raise ValueError(f"an image tensor must be (C, H, W) with C in 1, 3, 4; got {array.shape}")
    return array


def pil_to_chw(image: Any) -> np.ndarray:
    """A PIL image as (C, H, W) uint8: L, RGB and RGBA as they are, others converted."""
    if image.mode not in ("L", "RGB", "RGBA"):
        alpha = "A" in image.getbands() or "transparency" in image.info
        grey = image.mode in ("1", "I", "I;16", "F")
        image = image.convert("RGBA" if alpha else ("L" if grey else "RGB"))
    return array_to_chw(np.asarray(image))


def _one(item: Any, index: int) -> Encoded | np.ndarray:
    if isinstance(item, str | os.PathLike):
        path = Path(item)
        data = path.read_bytes()
        return Encoded(data, path.name, sniff(data)[0])
    if isinstance(item, bytes | bytearray | memoryview):
        data = bytes(item)
        content_type, suffix = sniff(data)
        return Encoded(data, f"{index:06d}{suffix}", content_type)
    if _is_pil(item):
        return pil_to_chw(item)
    if _is_torch(item):
        return tensor_to_chw(item)
    if isinstance(item, np.ndarray):
        return array_to_chw(item)
    raise TypeError(
        f"image {index}: unsupported type {type(item).__name__} (give a path, bytes, a PIL "
        "image, a numpy uint8 array or a torch uint8 tensor)"
    )


def _as_items(images: Any) -> list[Any] | np.ndarray:
    """A list of single images, or an (N, C, H, W) array when a batch was given whole."""
    if _is_torch(images):
        if images.ndim == 4:
            batch = _as_uint8(images.detach().cpu().numpy(), "image tensor")
            if batch.shape[1] not in CHANNELS:
                raise ValueError(f"an image batch tensor must be (N, C, H, W); got {batch.shape}")
            return batch
        return [images]
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            _as_uint8(images, "image array")
            return images if images.shape[-1] not in CHANNELS else np.moveaxis(images, -1, 1)
        return [images]
    if isinstance(images, str | os.PathLike | bytes | bytearray | memoryview) or _is_pil(images):
        return [images]
    if isinstance(images, Iterable):
        return list(images)
    raise TypeError(f"unsupported images argument of type {type(images).__name__}")


def encode_png(chw: np.ndarray) -> bytes:
    """Lossless PNG of a (C, H, W) uint8 array (needs Pillow)."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "images of different sizes (or mixed with files) are sent as PNG, which needs "
            "Pillow: pip install 'augsvc_client[images]'"
        ) from exc
    hwc = np.ascontiguousarray(np.moveaxis(chw, 0, -1))
    image = Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def prepare_images(images: Any, *, allow_tensor: bool = True) -> ImagePayload:
    """The request body for ``images`` (see the module docstring for what is accepted).

    ``allow_tensor=False`` forces multipart (an inline recipe needs a multipart body).
    """
    items = _as_items(images)
    if isinstance(items, np.ndarray):
        if len(items) == 0:
            raise ValueError("no images given")
        if allow_tensor:
            return ImagePayload(count=len(items), tensor=ImagesBody(items))
        prepared: list[Encoded | np.ndarray] = list(items)  # already (C, H, W) each
    elif not items:
        raise ValueError("no images given")
    else:
        prepared = [_one(item, i) for i, item in enumerate(items)]
    pixels = [p for p in prepared if isinstance(p, np.ndarray)]
    uniform = len(pixels) == len(prepared) and len({p.shape for p in pixels}) == 1
    if allow_tensor and uniform:
        return ImagePayload(count=len(pixels), tensor=ImagesBody(np.stack(pixels)))
    files = []
    for i, p in enumerate(prepared):
        if isinstance(p, np.ndarray):
            p = Encoded(encode_png(p), f"{i:06d}.png", "image/png")
        files.append(("images", (p.filename, p.data, p.content_type)))
    return ImagePayload(count=len(files), files=files)
