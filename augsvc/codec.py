"""Image decode/encode and the wire formats of augsvc (safetensors batches, stream frames, zip).

Everything here is a pure function of its arguments: limits such as ``max_pixels`` are passed
in by the caller (the API reads them from ``Settings``), and nothing knows about HTTP, Redis or
configuration. Anything a client can get wrong is raised as a typed error from
:mod:`augsvc.errors`; Pillow's and torchvision's own exceptions never escape, so bad uploads
become a 4xx and never a 500.

Decoded images are always ``uint8`` tensors of shape ``(C, H, W)`` with ``C`` in ``{1, 3, 4}``
(grey, RGB, RGBA): that is the only layout the engine has to handle.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Protocol

import numpy as np
import torch
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

try:  # torchvision's image IO is deprecated (0.29, successor: TorchCodec); Pillow covers it.
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_image as _torchvision_decode
except ImportError:  # pragma: no cover - depends on the installed torchvision
    _torchvision_decode = None

from augsvc.errors import (
    FieldError,
    ImageTooLarge,
    TooManyImages,
    UndecodableImage,
    ValidationFailed,
)

__all__ = [
    "FRAME_HEADER_BYTES",
    "decode_image",
    "encode_jpeg",
    "encode_png",
    "frame",
    "images_to_safetensors",
    "iter_frames",
    "make_zip",
    "read_frame",
    "read_image_batch",
    "sample_photo_bytes",
]

# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------

#: Pillow plugin class per accepted format. We instantiate these directly instead of calling
#: ``Image.open`` because ``Image.open`` applies the process-global ``Image.MAX_IMAGE_PIXELS``
#: (raising or *warning* depending on the size) and tries every registered plugin; we want
#: exactly six formats and our own, per-call pixel limit.
_PLUGINS: dict[str, type[ImageFile.ImageFile]] = {
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
}
_FORMAT_NAMES = {
    "JPEG": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "BMP": "BMP",
    "GIF": "GIF",
    "TIFF": "TIFF",
}
_EXPECTED_FORMATS = "JPEG, PNG, WebP, BMP, GIF or TIFF"

#: Formats and Pillow modes (-> channels) that torchvision decodes, to exactly the pixels
#: Pillow gives, about 2x faster (libjpeg-turbo straight into the tensor). JPEG only:
#: torchvision 0.29's PNG decoder segfaults the process on a PNG whose IDAT is shorter than
#: its IHDR claims ("libpng error: Not enough image data"), a 60-byte upload; and it was
#: only ~20% faster than Pillow for PNG anyway. A mutation fuzz of JPEGs found no crash.
_TORCHVISION_MODES = {"JPEG": {"L": 1, "RGB": 3}}

_ORIENTATION_TAG = 0x0112


def decode_image(data: bytes, *, max_pixels: int, name: str = "image") -> torch.Tensor:
    """Decode one uploaded image to a contiguous ``uint8`` ``(C, H, W)`` tensor.

    Accepts JPEG, PNG, WebP, BMP, GIF (first frame) and TIFF (first page) and applies the
    EXIF orientation, so the tensor is the image as a viewer shows it. The header is read
    first and an image with more than ``max_pixels`` pixels is refused with
    :class:`ImageTooLarge` before any pixel is decoded (decompression bombs cost nothing).

    Channels: ``1`` for 1-bit, grey, grey-palette and 16/32-bit/float grey images; ``3``
    for RGB, colour-palette, CMYK, YCbCr, LAB and HSV; ``4`` whenever there is
    transparency: RGBA, LA (grey replicated into R, G and B), palette or grey/RGB images
    with a transparency entry. See :func:`_to_8bit` for how deep images become 8-bit.

    Raises :class:`UndecodableImage` (empty, unknown format, corrupt or truncated data) and
    :class:`ImageTooLarge`; the detail always names ``name``.
    """
    return _decode(data, max_pixels=max_pixels, name=name, use_torchvision=True)


def _decode(data: bytes, *, max_pixels: int, name: str, use_torchvision: bool) -> torch.Tensor:
    """:func:`decode_image`, with the torchvision fast path switchable for the parity tests."""
    label = _label(name)
    fmt = _sniff_format(data)
    if fmt is None:
        reason = (
            "empty upload (0 bytes)"
            if len(data) == 0
            else f"not a recognised image format (expected {_EXPECTED_FORMATS})"
        )
        raise UndecodableImage(f"{label}: {reason}")
    image = _open_header(data, fmt, label)
    try:
        _check_pixels(image.size, max_pixels, label)
        orientation = _orientation(image)
        pixels: torch.Tensor | None = None
        if use_torchvision:
            pixels = _decode_with_torchvision(data, image, fmt)
        if pixels is None:
            pixels = _decode_with_pillow(image, fmt, label)
    finally:
        image.close()
    return _apply_orientation(pixels, orientation)


def _label(name: str) -> str:
    """How error details refer to the upload: ``image 'cat.jpg'`` (names are client input)."""
    return f"image {str(name)[:200]!r}"


def _sniff_format(data: bytes) -> str | None:
    """The format named by the magic bytes, or None; cheaper and stricter than asking Pillow."""
    head = bytes(data[:12])
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    return None


def _open_header(data: bytes, fmt: str, label: str) -> ImageFile.ImageFile:
    """Parse only the header (size, mode, metadata); Pillow defers pixel decoding to load()."""
    try:
        return _PLUGINS[fmt](io.BytesIO(data))
    except MemoryError:
        raise
    except Exception as exc:
        what = "truncated" if _looks_truncated(exc) else "unreadable"
        raise UndecodableImage(
            f"{label}: {what} {_FORMAT_NAMES[fmt]} header ({_reason(exc)})"
        ) from exc


def _check_pixels(size: tuple[int, int], max_pixels: int, label: str) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{label}: {width}x{height} is {width * height} pixels, "
            f"more than the limit of {max_pixels}"
        )


def _orientation(image: Image.Image) -> int:
    """EXIF orientation (1..8) read from the header only; broken EXIF counts as upright.

    ``Image.Image.getexif`` is called unbound on purpose: the PNG plugin's override decodes
    the whole image to look for an eXIf chunk after the pixel data. Orientation must be
    known from the header alone so that both decode paths apply it the same way.
    """
    try:
        value = Image.Image.getexif(image).get(_ORIENTATION_TAG, 1)
    except MemoryError:
        raise
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _decode_with_torchvision(
    data: bytes, image: ImageFile.ImageFile, fmt: str
) -> torch.Tensor | None:
    """Fast path for plain 8-bit JPEG; None means "let Pillow do it" (also on errors,
    so that corrupt files get Pillow's clearer diagnosis and both paths fail alike)."""
    channels = _TORCHVISION_MODES.get(fmt, {}).get(image.mode)
    if (
        _torchvision_decode is None
        or channels is None
        or "transparency" in image.info
        or _tile_rawmode(image) != image.mode
    ):
        return None
    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    try:
        pixels = _torchvision_decode(
            encoded, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=False
        )
    except RuntimeError:
        return None
    width, height = image.size
    if pixels.dtype != torch.uint8 or tuple(pixels.shape) != (channels, height, width):
        return None
    return pixels


def _tile_rawmode(image: ImageFile.ImageFile) -> str | None:
    """The raw pixel layout Pillow will decode; equal to the mode only for plain 8-bit data
    (16-bit PNGs, 2/4-bit greys and inverted CMYK JPEGs have rawmodes such as 'RGB;16B')."""
    if len(image.tile) != 1:
        return None
    args = image.tile[0].args
    if isinstance(args, tuple):
        args = args[0] if args else None
    return args if isinstance(args, str) else None


def _decode_with_pillow(image: ImageFile.ImageFile, fmt: str, label: str) -> torch.Tensor:
    try:
        image.load()
        return _image_to_tensor(image)
    except MemoryError:
        raise
    except Exception as exc:
        what = "truncated" if _looks_truncated(exc) else "corrupt"
        raise UndecodableImage(
            f"{label}: {what} {_FORMAT_NAMES[fmt]} data ({_reason(exc)})"
        ) from exc


def _looks_truncated(exc: BaseException) -> bool:
    return isinstance(exc, EOFError) or "truncat" in str(exc).lower()


def _reason(exc: BaseException) -> str:
    """A short reason from a Pillow exception, for the error detail."""
    return (str(exc).strip() or type(exc).__name__)[:200]


_RGBA_MODES = {"LA", "PA", "RGBa"}
_DEEP_GREY_MODES = {"I", "F", "I;16", "I;16L", "I;16B", "I;16N"}


def _image_to_tensor(image: Image.Image) -> torch.Tensor:
    """Map any Pillow mode to a uint8 (C, H, W) tensor with C in {1, 3, 4} (rules in
    :func:`decode_image`)."""
    mode = image.mode
    transparent = "transparency" in image.info
    if mode in _DEEP_GREY_MODES:
        return _array_to_tensor(_to_8bit(np.asarray(image), mode))
    if mode == "La":  # premultiplied grey: Pillow converts it to nothing but LA
        image = image.convert("LA").convert("RGBA")
    elif mode in _RGBA_MODES or (transparent and mode in {"1", "L", "P", "RGB"}):
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode == "P":
        image = image.convert("L" if _palette_is_grey(image) else "RGB")
    elif mode not in {"L", "RGB", "RGBA"}:
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX
    return _array_to_tensor(np.asarray(image))


def _palette_is_grey(image: Image.Image) -> bool:
    palette = image.getpalette("RGB") or []
    entries = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    return bool((entries == entries[:, :1]).all())


def _to_8bit(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale a deep grey image to 8 bits without looking at the picture where possible.

    16-bit modes keep the high byte (what Pillow does for 16-bit colour PNGs), so a
    dataset keeps its relative brightness. 32-bit ``I`` and float ``F`` carry no bit
    depth: values already in [0, 255] (or [0, 1] for floats) are used as they are, ``I``
    values within [0, 65535] are treated as 16-bit, anything else is stretched min..max
    (NaN/inf count as 0).
    """
    if mode.startswith("I;16"):
        return (values.astype(np.uint16) >> 8).astype(np.uint8)
    data = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = data * 255.0
    elif low >= 0.0 and high <= 255.0:
        scaled = data
    elif mode == "I" and low >= 0.0 and high <= 65535.0:
        return (data.astype(np.uint16) >> 8).astype(np.uint8)
    elif high > low:
        scaled = (data - low) * (255.0 / (high - low))
    else:
        scaled = np.zeros_like(data)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """HW or HWC numpy -> owned, contiguous CHW tensor (Pillow's arrays are read-only)."""
    chw = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    return torch.from_numpy(np.array(chw, dtype=np.uint8, order="C", copy=True))


_ORIENTATIONS: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {
    2: lambda t: t.flip(-1),  # mirror left-right
    3: lambda t: t.flip(-2, -1),  # rotate 180
    4: lambda t: t.flip(-2),  # mirror top-bottom
    5: lambda t: t.transpose(-2, -1),  # transpose
    6: lambda t: t.rot90(-1, (-2, -1)),  # rotate 90 clockwise
    7: lambda t: t.flip(-2, -1).transpose(-2, -1),  # transverse
    8: lambda t: t.rot90(1, (-2, -1)),  # rotate 90 counter-clockwise
}


def _apply_orientation(pixels: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply EXIF orientation as tensor ops, identically for both decode paths."""
    transform = _ORIENTATIONS.get(orientation)
    if transform is not None:
        pixels = transform(pixels)
    return _contiguous(pixels)


def _contiguous(pixels: torch.Tensor) -> torch.Tensor:
    """Make a CPU uint8 tensor C-contiguous. torchvision returns CHW views of HWC memory, and
    numpy's strided copy does that transpose about 2x faster than torch's single-threaded
    one (155 vs 312 us for a 500x375 RGB image), a third of the whole JPEG decode."""
    if pixels.is_contiguous():
        return pixels
    return torch.from_numpy(np.ascontiguousarray(pixels.numpy()))


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------


def encode_png(img: torch.Tensor, *, compress_level: int = 1) -> bytes:
    """Encode a uint8 (C, H, W) tensor, C in {1, 3, 4}, as PNG.

    Pillow, not torchvision: torchvision cannot write RGBA and is no faster. Level 1 is the
    default because on photos it is ~4x faster than zlib's 6 for ~8% more bytes, and this
    runs on the response path.
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
    # Interleave planes with Image.merge: ~55 us for 500x375 RGB, where a CHW->HWC copy in
    # torch or numpy takes 500-600 us, half the cost of the whole JPEG encode.
    planes = _contiguous(img.detach().cpu()).numpy()
    _, height, width = planes.shape
    bands = [Image.frombuffer("L", (width, height), plane, "raw", "L", 0, 1) for plane in planes]
    if len(bands) == 1:
        return bands[0]
    return Image.merge("RGB" if len(bands) == 3 else "RGBA", bands)


def _save(image: Image.Image, fmt: str, **options: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# safetensors batches
# --------------------------------------------------------------------------------------

#: safetensors' own cap on the JSON header; a bigger claim is garbage or an attack.
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


_SAFETENSORS_DTYPES = {
    torch.bool: "BOOL",
    torch.uint8: "U8",
    torch.int8: "I8",
    torch.int16: "I16",
    torch.int32: "I32",
    torch.int64: "I64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float32: "F32",
    torch.float64: "F64",
}


def images_to_safetensors(
    tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> bytes:
    """Serialise tensors (moved to CPU, made contiguous) as a safetensors blob.

    Written here rather than by ``safetensors.torch.save`` for two reasons: the bytes
    must not depend on the process (the Rust writer emits ``__metadata__`` in HashMap
    order, randomised per process, so replicas would answer one request differently),
    and a response is tens of MB, so it is assembled with a single copy. Tensors are
    laid out as the reference writer does (widest dtype first, then by name), which
    keeps every tensor aligned; the header is padded to 8 bytes.
    """
    prepared = []
    for name, tensor in tensors.items():
        value = tensor.detach().to("cpu").contiguous()
        if value.dtype not in _SAFETENSORS_DTYPES:
            raise ValueError(f"tensor {name!r}: dtype {value.dtype} has no safetensors name")
        prepared.append((name, value))
    prepared.sort(key=lambda item: (-item[1].element_size(), item[0]))
    header: dict[str, object] = {}
    buffers = []
    offset = 0
    for name, value in prepared:
        size = value.numel() * value.element_size()
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[value.dtype],
            "shape": list(value.shape),
            "data_offsets": [offset, offset + size],
        }
        buffers.append(value.view(-1).view(torch.uint8).numpy() if size else b"")
        offset += size
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    encoded = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    encoded += b" " * (-len(encoded) % 8)
    return b"".join([struct.pack("<Q", len(encoded)), encoded, *buffers])


def read_image_batch(data: bytes | bytearray, *, max_images: int, max_pixels: int) -> torch.Tensor:
    """The uint8 ``images`` tensor (N, C, H, W) of an uploaded safetensors body.

    The header is parsed and every field checked against the body and the limits before a
    byte of tensor data is copied; pickle is never involved. Raises
    :class:`UndecodableImage` (not safetensors / inconsistent header),
    :class:`ValidationFailed` (no ``images``, wrong dtype, rank or channels),
    :class:`TooManyImages` and :class:`ImageTooLarge`.
    """
    header, body_start = _safetensors_header(data)
    entry = header.get("images")
    if entry is None:
        names = ", ".join(repr(k) for k in header if k != "__metadata__") or "none"
        raise _batch_error(f"safetensors body has no tensor named 'images' (tensors: {names})")
    if not isinstance(entry, dict):
        raise UndecodableImage("safetensors header entry for 'images' is not an object")
    shape = _batch_shape(entry, max_images=max_images, max_pixels=max_pixels)
    start, end = _batch_offsets(entry, shape, body_len=len(data) - body_start)
    if isinstance(data, bytearray):  # writable: view the pixels where they already are
        flat = torch.frombuffer(
            data, dtype=torch.uint8, count=end - start, offset=body_start + start
        )
    else:
        flat = torch.frombuffer(
            bytearray(memoryview(data)[body_start + start : body_start + end]), dtype=torch.uint8
        )
    return flat.view(shape)


def _safetensors_header(data: bytes) -> tuple[dict[str, object], int]:
    """Parse ``u64 little-endian header length`` + JSON; returns (header, body offset)."""
    if len(data) < 8:
        raise UndecodableImage(
            f"body is not a safetensors file: {len(data)} bytes, shorter than the "
            "8-byte header length"
        )
    (header_len,) = struct.unpack_from("<Q", data)
    if header_len > len(data) - 8 or header_len > _MAX_SAFETENSORS_HEADER:
        raise UndecodableImage(
            f"body is not a valid safetensors file: header length {header_len} is larger "
            f"than the {len(data) - 8} bytes that follow it"
        )
    try:
        header = json.loads(bytes(memoryview(data)[8 : 8 + header_len]))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UndecodableImage(
            f"body is not a valid safetensors file: header is not JSON ({exc})"
        ) from exc
    if not isinstance(header, dict):
        raise UndecodableImage("body is not a valid safetensors file: header is not an object")
    return header, 8 + header_len


def _batch_shape(
    entry: dict[str, object], *, max_images: int, max_pixels: int
) -> tuple[int, int, int, int]:
    dtype = entry.get("dtype")
    if dtype != "U8":
        raise _batch_error(
            f"tensor 'images' must have dtype uint8 (safetensors 'U8'), got {dtype!r}"
        )
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise UndecodableImage(f"safetensors header: 'images' has a malformed shape {shape!r}")
    if len(shape) != 4:
        raise _batch_error(
            f"tensor 'images' must have 4 dimensions (N, C, H, W), got shape {shape}"
        )
    n, c, h, w = shape
    if c not in (1, 3, 4):
        raise _batch_error(
            f"tensor 'images' must have 1, 3 or 4 channels (N, C, H, W), got C={c} in shape {shape}"
        )
    if n < 1 or h < 1 or w < 1:
        raise _batch_error(f"tensor 'images' is empty: shape {shape}")
    if n > max_images:
        raise TooManyImages(
            f"tensor 'images' holds {n} images, more than the limit of {max_images}"
        )
    if h * w > max_pixels:
        raise ImageTooLarge(
            f"tensor 'images' has {w}x{h} = {h * w} pixels per image, "
            f"more than the limit of {max_pixels}"
        )
    return n, c, h, w


def _batch_offsets(
    entry: dict[str, object], shape: tuple[int, ...], *, body_len: int
) -> tuple[int, int]:
    offsets = entry.get("data_offsets")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        raise UndecodableImage(
            f"safetensors header: 'images' has malformed data_offsets {offsets!r}"
        )
    start, end = offsets
    expected = math.prod(shape)
    if end - start != expected or end > body_len:
        raise UndecodableImage(
            f"safetensors header: 'images' data_offsets {offsets} do not hold the "
            f"{expected} bytes of shape {list(shape)} within the {body_len}-byte data section"
        )
    return start, end


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _batch_error(detail: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[FieldError(("images",), detail)])


# --------------------------------------------------------------------------------------
# Stream frames and zip
# --------------------------------------------------------------------------------------

FRAME_HEADER_BYTES = 8
_FRAME_HEADER = struct.Struct("<Q")


class SupportsRead(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def frame(blob: bytes) -> bytes:
    """One ``application/x-augsvc-stream`` frame: 8-byte little-endian length, then blob."""
    return _FRAME_HEADER.pack(len(blob)) + blob


def read_frame(buf: bytes | bytearray | memoryview) -> tuple[bytes, int] | None:
    """Parse the frame at the start of ``buf``: ``(blob, bytes consumed)``, or None while
    ``buf`` does not yet hold a whole frame (for incremental readers of a byte stream)."""
    if len(buf) < FRAME_HEADER_BYTES:
        return None
    (length,) = _FRAME_HEADER.unpack_from(buf)
    end = FRAME_HEADER_BYTES + length
    if len(buf) < end:
        return None
    return bytes(buf[FRAME_HEADER_BYTES:end]), end


def iter_frames(readable: SupportsRead, *, max_frame_bytes: int | None = None) -> Iterator[bytes]:
    """Yield the blobs of a frame stream until a clean end of input.

    Raises :class:`ValidationFailed` when the input ends inside a frame or a frame claims
    more than ``max_frame_bytes``.
    """
    while True:
        header = _read_exactly(readable, FRAME_HEADER_BYTES)
        if not header:
            return
        if len(header) < FRAME_HEADER_BYTES:
            raise ValidationFailed(
                f"truncated stream: frame header ends after {len(header)} of 8 bytes"
            )
        (length,) = _FRAME_HEADER.unpack(header)
        if max_frame_bytes is not None and length > max_frame_bytes:
            raise ValidationFailed(
                f"stream frame of {length} bytes exceeds the limit of {max_frame_bytes}"
            )
        blob = _read_exactly(readable, length)
        if len(blob) < length:
            raise ValidationFailed(
                f"truncated stream: frame of {length} bytes ends after {len(blob)}"
            )
        yield blob


def _read_exactly(readable: SupportsRead, size: int) -> bytes:
    """Read ``size`` bytes, looping over short reads; fewer only at end of input."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = readable.read(size - len(chunks))
        if not chunk:
            break
        chunks += chunk
    return bytes(chunks)


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def make_zip(files: Sequence[tuple[str, bytes]]) -> bytes:
    """A ZIP of already-compressed files (PNG/JPEG), stored without deflate.

    Timestamps are fixed so the same images give the same archive bytes. Duplicate names
    are a caller bug (ValueError): unzip tools would silently keep only one.
    """
    buffer = io.BytesIO()
    seen: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, payload in files:
            if name in seen:
                raise ValueError(f"duplicate file name in zip: {name!r}")
            seen.add(name)
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# Sample photo
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def sample_photo_bytes() -> bytes:
    """The bundled 500x375 JPEG photo (``augsvc/data/sample.jpg``, CC0) used by previews."""
    return (resources.files("augsvc") / "data" / "sample.jpg").read_bytes()
