"""Real image files for tests, written with Pillow: every format and mode augsvc accepts,
plus a corpus of broken uploads. Shared by the codec, engine and API tests.

Pictures are smooth (a few random sinusoids) rather than white noise, so lossy formats
round-trip closely and the tests can assert on pixel values.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

#: (Pillow format, mode) pairs that :func:`write_images` writes, one file each.
FORMAT_MODES: tuple[tuple[str, str], ...] = (
    ("JPEG", "L"),
    ("JPEG", "RGB"),
    ("JPEG", "CMYK"),
    ("PNG", "1"),
    ("PNG", "L"),
    ("PNG", "LA"),
    ("PNG", "P"),
    ("PNG", "RGB"),
    ("PNG", "RGBA"),
    ("PNG", "I;16"),
    ("WEBP", "RGB"),
    ("WEBP", "RGBA"),
    ("BMP", "RGB"),
    ("BMP", "L"),
    ("GIF", "P"),
    ("GIF", "L"),
    ("TIFF", "RGB"),
    ("TIFF", "RGBA"),
    ("TIFF", "CMYK"),
    ("TIFF", "I;16"),
    ("TIFF", "F"),
)

_SUFFIXES = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "GIF": "gif", "TIFF": "tif"}
ORIENTATION_TAG = 0x0112


def smooth_array(width: int, height: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """uint8 (H, W, C) picture made of a few random low-frequency sinusoids per channel."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    planes = []
    for _ in range(channels):
        plane = np.zeros((height, width))
        for _ in range(3):
            fx, fy = rng.uniform(0.5, 3.0, size=2) * 2 * np.pi
            phase = rng.uniform(0, 2 * np.pi)
            plane += np.sin(fx * xs / max(width, 1) + fy * ys / max(height, 1) + phase)
        planes.append(plane)
    stacked = np.stack(planes, axis=-1)
    low, high = stacked.min(), stacked.max()
    scaled = (stacked - low) / (high - low if high > low else 1.0) * 235 + 10
    return np.rint(scaled).astype(np.uint8)


def make_image(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A Pillow image of the given mode with smooth content (see :func:`smooth_array`)."""
    rgba = smooth_array(width, height, 4, seed)
    rgb = Image.fromarray(rgba[..., :3])
    if mode == "RGB":
        return rgb
    if mode == "RGBA":
        return Image.fromarray(rgba)
    if mode == "LA":
        return Image.merge("LA", (rgb.convert("L"), Image.fromarray(rgba[..., 3])))
    if mode == "P":
        return rgb.quantize(colors=64)
    if mode == "I;16":
        deep = rgba[..., 0].astype(np.uint16) * 257 + rgba[..., 1] // 64
        return Image.fromarray(deep)
    if mode == "F":
        return Image.fromarray(rgba[..., 0].astype(np.float32) / 255.0)
    return rgb.convert(mode)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    """Encode a Pillow image in memory."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def image_bytes(fmt: str, width: int, height: int, mode: str = "RGB", seed: int = 0) -> bytes:
    """Any supported (format, mode): lossless where the format allows (WebP lossless)."""
    options: dict[str, object] = {}
    if fmt == "JPEG":
        options["quality"] = 95
    if fmt == "WEBP":
        options["lossless"] = True
    return encode(make_image(width, height, mode, seed), fmt, **options)


def jpeg_bytes(
    width: int,
    height: int,
    seed: int = 0,
    *,
    quality: int = 90,
    mode: str = "RGB",
    orientation: int | None = None,
    progressive: bool = False,
) -> bytes:
    """A JPEG of :func:`make_image`, optionally with an EXIF orientation tag."""
    options: dict[str, object] = {"quality": quality, "progressive": progressive}
    if orientation is not None:
        options["exif"] = exif_with_orientation(orientation)
    return encode(make_image(width, height, mode, seed), "JPEG", **options)


def png_bytes(
    width: int,
    height: int,
    mode: str = "RGB",
    seed: int = 0,
    *,
    transparency: int | tuple[int, int, int] | None = None,
    orientation: int | None = None,
) -> bytes:
    """A PNG of :func:`make_image`; ``transparency`` writes a tRNS entry."""
    options: dict[str, object] = {}
    if transparency is not None:
        options["transparency"] = transparency
    if orientation is not None:
        options["exif"] = exif_with_orientation(orientation)
    return encode(make_image(width, height, mode, seed), "PNG", **options)


def exif_with_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif


def gif_bytes(frames: list[np.ndarray], duration_ms: int = 100) -> bytes:
    """An animated GIF from uint8 (H, W, 3) arrays (each should use <= 256 colours)."""
    images = [Image.fromarray(f).quantize(colors=256, dither=Image.Dither.NONE) for f in frames]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=duration_ms)


def photo_jpeg() -> bytes:
    """The real photo shipped with augsvc (500x375 JPEG)."""
    from augsvc.codec import sample_photo_bytes

    return sample_photo_bytes()


def write_images(directory: Path, width: int = 64, height: int = 48) -> dict[str, Path]:
    """Write one file per entry of :data:`FORMAT_MODES`; keys look like ``"png-LA"``."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for index, (fmt, mode) in enumerate(FORMAT_MODES):
        key = f"{fmt.lower()}-{mode.replace(';', '')}"
        path = directory / f"{key}.{_SUFFIXES[fmt]}"
        path.write_bytes(image_bytes(fmt, width, height, mode, seed=index))
        written[key] = path
    return written


# ----------------------------------------------------------------------------------------
# Broken uploads
# ----------------------------------------------------------------------------------------


def raw_png(
    width: int, height: int, raw_rows: bytes, *, bit_depth: int = 8, colour_type: int = 2
) -> bytes:
    """A PNG built chunk by chunk around ``raw_rows`` (filter byte + samples per row, not
    checked against the header): for files Pillow will not write, such as 16-bit RGB or
    a header that lies about the size. Colour type 2 is RGB, 0 grey, 6 RGBA."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw_rows))
        + chunk(b"IEND", b"")
    )


def png_with_declared_size(width: int, height: int) -> bytes:
    """A structurally valid PNG whose IHDR claims ``width`` x ``height`` but whose IDAT
    holds one RGB pixel: what a decompression bomb's header looks like."""
    return raw_png(width, height, b"\x00" + b"\x00" * 3)


def nasty_corpus(seed: int = 0) -> dict[str, bytes]:
    """Uploads that must be refused with a typed error, never a crash or a 500."""
    rng = np.random.default_rng(seed)
    jpeg = jpeg_bytes(320, 240, seed)
    png = png_bytes(320, 240)
    return {
        "zero_bytes": b"",
        "text_named_jpg": b"this is not a picture, just some text\n" * 4,
        "truncated_jpeg": jpeg[: len(jpeg) // 2],
        "truncated_png": png[: len(png) // 2],
        "png_bomb_30000": png_with_declared_size(30000, 30000),
        "random_bytes": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "jpeg_header_then_garbage": jpeg[:200] + rng.integers(0, 256, 4096, np.uint8).tobytes(),
    }


# ----------------------------------------------------------------------------------------
# safetensors bodies, including hand-made broken ones
# ----------------------------------------------------------------------------------------


def raw_safetensors(
    header: dict[str, object], payload: bytes, *, header_len: int | None = None
) -> bytes:
    """A safetensors file from an explicit header; ``header_len`` can lie about its size."""
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    length = len(encoded) if header_len is None else header_len
    return struct.pack("<Q", length) + encoded + payload


def tensor_safetensors(
    shape: tuple[int, ...], dtype: str = "U8", name: str = "images", fill: int = 7
) -> bytes:
    """One tensor of the given safetensors dtype (U8, F32, ...) with consistent offsets."""
    itemsize = {"U8": 1, "F16": 2, "F32": 4, "I64": 8}[dtype]
    size = int(np.prod(shape)) * itemsize
    header = {name: {"dtype": dtype, "shape": list(shape), "data_offsets": [0, size]}}
    return raw_safetensors(header, bytes([fill]) * size)
