"""Decoding uploads into ``uint8`` (C, H, W) tensors, refusing bad data with typed errors.

The format is sniffed from magic bytes, the header is read first and the pixel count
checked against ``max_pixels`` before any pixel is decoded (decompression bombs never
allocate), EXIF orientation is applied, and every decoder's failure becomes an
:class:`~augsvc.errors.UndecodableImage` naming the file.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field

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

from augsvc.codec import jpeg_region
from augsvc.errors import (
    ImageTooLarge,
    UndecodableImage,
)

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

#: Formats and Pillow modes (-> channels) that the fast path (:func:`_decode_fast`)
#: decodes, to exactly the pixels Pillow gives, faster (libjpeg-turbo straight into the
#: tensor). JPEG only: torchvision 0.29's PNG decoder segfaults the process on a PNG
#: whose IDAT is shorter than its IHDR claims ("libpng error: Not enough image data"), a
#: 60-byte upload; and it was barely faster than Pillow for PNG anyway. A mutation fuzz
#: of JPEGs found no crash.
_FAST_MODES = {"JPEG": {"L": 1, "RGB": 3}}

_ORIENTATION_TAG = 0x0112


def decode_image(data: bytes, *, max_pixels: int, name: str = "image") -> torch.Tensor:
    """Decode one uploaded image to a ``uint8`` ``(C, H, W)`` tensor (a JPEG's channels may
    be interleaved in memory, as its decoder writes them).

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
    return probe_image(data, max_pixels=max_pixels, name=name).decode()


@dataclass(frozen=True, eq=False)
class ImageHeader:
    """An upload whose header has been read and checked, and none of its pixels decoded.

    Its size is what decoding will cost, known from the header alone, so a caller can
    refuse or budget a batch of uploads before decoding any of them. :meth:`decode`
    continues from the parsed header (once)."""

    label: str
    format: str
    width: int
    height: int
    orientation: int
    #: Whether :meth:`decode_scaled` can decode it at a reduced scale (a baseline or
    #: progressive JPEG, which libjpeg scales in the DCT domain).
    scalable: bool
    _data: bytes = field(repr=False)
    _image: ImageFile.ImageFile = field(repr=False)

    @property
    def pixels(self) -> int:
        """Pixels of the decoded image (of its first frame or page)."""
        return self.width * self.height

    @property
    def displayed_hw(self) -> tuple[int, int]:
        """(height, width) as a viewer shows the image: after its EXIF orientation."""
        return (self.width, self.height) if self.orientation >= 5 else (self.height, self.width)

    @property
    def channels(self) -> int:
        """Channels the decode gives (1, 3 or 4, the rules of :func:`_to_tensor`), read
        from the header's mode; a palette counts as colour (its greyness is in its data)."""
        mode = self._image.mode
        if mode in _DEEP_GREY_MODES or (mode in {"1", "L"} and not self._transparent):
            return 1
        if mode in _RGBA_MODES or mode in {"RGBA", "La"} or self._transparent:
            return 4
        return 3

    @property
    def _transparent(self) -> bool:
        return "transparency" in self._image.info

    def decoded_hw(self, scale: int) -> tuple[int, int]:
        """The displayed (height, width) :meth:`decode_scaled` gives at ``scale``."""
        h, w = self.displayed_hw
        scale = self._usable_scale(scale)
        return -(-h // scale), -(-w // scale)

    def _usable_scale(self, scale: int) -> int:
        """``scale``, or less: 1 for anything but JPEG, at most the image's size, and a
        divisor of every stored side that the orientation reverses. DCT blocks start at
        the stored image's first pixel; where an axis is reversed for display they must
        also end on its last one, or the scaled pixels would sit half a pixel off the
        grid the full image's box filter uses (a visible shift on fine texture)."""
        if not self.scalable:
            return 1
        reversed_sides = [self.width] if self.orientation in (2, 3, 7, 8) else []
        reversed_sides += [self.height] if self.orientation in (3, 4, 6, 7) else []
        while scale > 1 and (
            min(self.width, self.height) < scale or any(side % scale for side in reversed_sides)
        ):
            scale //= 2
        return scale

    def decoded_pixels(self, scale: int) -> int:
        """Pixels :meth:`decode_scaled` holds at ``scale``: what a budget should count."""
        h, w = self.decoded_hw(scale)
        return h * w

    def decode(self) -> torch.Tensor:
        """The pixels, as :func:`decode_image` returns them."""
        return self._decode(fast=True)

    def decode_scaled(self, scale: int) -> ScaledImage:
        """The image at 1/``scale`` of its size (1, 2, 4 or 8; JPEG only, anything else
        decodes whole), with the map from the full image's pixels to the decoded ones.

        libjpeg scales in the DCT domain (Pillow's draft mode): each 8x8 block becomes
        8/scale pixels a side, skipping most of the inverse DCT and colour conversion,
        so a 1/4 decode costs a fraction of a full one. Orientation is applied to the
        scaled pixels and the map accounts for it, so the map is in the displayed frame.
        Errors are :meth:`decode`'s."""
        full_hw = self.displayed_hw
        if scale not in (1, 2, 4, 8):
            raise ValueError(f"scale must be 1, 2, 4 or 8, got {scale}")
        scale = self._usable_scale(scale)
        if scale == 1:
            return ScaledImage(self.decode(), full_hw, None)
        try:
            self._image.draft(self._image.mode, (self.width // scale, self.height // scale))
            pixels = _decode_with_pillow(self._image, self.format, self.label)
        finally:
            self._image.close()
        if tuple(pixels.shape[1:]) != self._stored_hw(scale):
            raise UndecodableImage(f"{self.label}: JPEG data did not decode at 1/{scale}")
        return ScaledImage(
            _apply_orientation(pixels, self.orientation), full_hw, self.scaled_map(scale)
        )

    def scaled_map(self, scale: int) -> np.ndarray | None:
        """The map :meth:`decode_scaled` gives at ``scale``: full displayed pixel
        coordinates to those of the scaled decode (None when it decodes whole)."""
        scale = self._usable_scale(scale)
        if scale == 1:
            return None
        stored_h, stored_w = self._stored_hw(scale)
        return (
            _orientation_matrix(self.orientation, stored_w, stored_h)
            @ np.linalg.inv(_box_centres(scale))
            @ np.linalg.inv(_orientation_matrix(self.orientation, self.width, self.height))
        )

    def _stored_hw(self, scale: int) -> tuple[int, int]:
        return -(-self.height // scale), -(-self.width // scale)

    def decode_region(self, scale: int, box: jpeg_region.Box) -> ScaledImage:
        """Only ``box`` (top, left, bottom, right in the displayed pixels of the scaled
        decode) of :meth:`decode_scaled`'s pixels, where the region decoder takes the
        image: a plain 8-bit grey or colour JPEG that libjpeg reads to its end without a
        complaint. They are exactly :meth:`decode_scaled`'s pixels there; ``region`` says where
        they lie and ``frame_hw`` how large the whole scaled image is. Anything the
        region decoder does not take decodes whole, as :meth:`decode_scaled` does, with
        its errors."""
        scale = self._usable_scale(scale)
        if not self._region_decodable():
            return self.decode_scaled(scale)
        stored_h, stored_w = self._stored_hw(scale)
        to_stored = np.linalg.inv(_orientation_matrix(self.orientation, stored_w, stored_h))
        stored_box = _map_box(to_stored, box)
        decoded = jpeg_region.decode_window(self._data, scale, stored_box)
        if decoded is None:
            return self.decode_scaled(scale)
        self._image.close()
        window, (top, left, _, _) = decoded
        pixels = window[
            :,
            stored_box[0] - top : stored_box[2] - top,
            stored_box[1] - left : stored_box[3] - left,
        ]
        transform = _ORIENTATIONS.get(self.orientation)
        if transform is not None:
            pixels = transform(pixels)  # the box's pixels alone
        frame = self.decoded_hw(scale)
        return ScaledImage(pixels, self.displayed_hw, self.scaled_map(scale), box, frame)

    def _region_decodable(self) -> bool:
        return jpeg_region.AVAILABLE and fast_channels(self._image, self.format) is not None

    def _decode(self, *, fast: bool) -> torch.Tensor:
        """With the libjpeg fast path switchable, for the parity tests."""
        try:
            pixels: torch.Tensor | None = None
            if fast:
                pixels = _decode_fast(self._data, self._image, self.format)
            if pixels is None:
                pixels = _decode_with_pillow(self._image, self.format, self.label)
        finally:
            self._image.close()
        return _apply_orientation(pixels, self.orientation)


@dataclass(frozen=True)
class ScaledImage:
    """An image decoded at a reduced scale: ``pixels`` (uint8 (C, h, w), displayed
    frame), ``full_hw`` the displayed size of the whole image, and ``to_pixels`` the
    3x3 map from the whole image's pixel coordinates to ``pixels``' (None when the
    image was decoded whole). The engine draws a sample's parameters for ``full_hw``
    and warps ``pixels`` through the map, so the sample's geometry never depends on
    the scale it was decoded at."""

    pixels: torch.Tensor
    full_hw: tuple[int, int]
    to_pixels: np.ndarray | None
    #: When only part of the scaled image was decoded (:meth:`ImageHeader.decode_region`):
    #: where ``pixels`` lie in it, (top, left, bottom, right), and its whole size.
    region: tuple[int, int, int, int] | None = None
    frame_hw: tuple[int, int] | None = None


def _map_box(m: np.ndarray, box: jpeg_region.Box) -> jpeg_region.Box:
    """A pixel box through an orientation map (a flip or transpose of pixel centres)."""
    top, left, bottom, right = box
    corners = m @ np.array([[left, right - 1], [top, bottom - 1], [1, 1]], dtype=np.float64)
    xs, ys = np.rint(corners[0]).astype(int), np.rint(corners[1]).astype(int)
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def _box_centres(scale: int) -> np.ndarray:
    """Pixel j of a 1/scale decode covers pixels [scale*j, scale*(j+1)): its centre."""
    offset = (scale - 1) / 2
    return np.array([[scale, 0, offset], [0, scale, offset], [0, 0, 1]], dtype=np.float64)


def _orientation_matrix(orientation: int, width: int, height: int) -> np.ndarray:
    """The map from stored pixel coordinates of a ``width`` x ``height`` image to where
    :data:`_ORIENTATIONS` puts them (the displayed frame)."""
    w1, h1 = width - 1, height - 1
    x, y = {
        1: ((1, 0, 0), (0, 1, 0)),
        2: ((-1, 0, w1), (0, 1, 0)),
        3: ((-1, 0, w1), (0, -1, h1)),
        4: ((1, 0, 0), (0, -1, h1)),
        5: ((0, 1, 0), (1, 0, 0)),
        6: ((0, -1, h1), (1, 0, 0)),
        7: ((0, -1, h1), (-1, 0, w1)),
        8: ((0, 1, 0), (-1, 0, w1)),
    }[orientation]
    return np.array([x, y, (0, 0, 1)], dtype=np.float64)


def probe_image(data: bytes, *, max_pixels: int, name: str = "image") -> ImageHeader:
    """Read only the header of an upload: its format and size, without decoding a pixel.

    Raises what :func:`decode_image` raises for a bad header: :class:`UndecodableImage`
    (empty, unknown format, unreadable header) and :class:`ImageTooLarge` (more than
    ``max_pixels``); the detail names ``name``."""
    label = _label(name)
    fmt = sniff_format(data)
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
    except BaseException:
        image.close()
        raise
    width, height = image.size
    scalable = fmt == "JPEG" and len(image.tile) == 1
    return ImageHeader(label, fmt, width, height, orientation, scalable, data, image)


def _decode(data: bytes, *, max_pixels: int, name: str, fast: bool) -> torch.Tensor:
    """:func:`decode_image`, with the libjpeg fast path switchable for the parity tests."""
    return probe_image(data, max_pixels=max_pixels, name=name)._decode(fast=fast)


def _label(name: str) -> str:
    """How error details refer to the upload: ``image 'cat.jpg'`` (names are client input)."""
    return f"image {str(name)[:200]!r}"


def sniff_format(data: bytes) -> str | None:
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
        raise _undecodable(exc, label, fmt, "header", otherwise="unreadable") from exc


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


def fast_channels(image: ImageFile.ImageFile, fmt: str) -> int | None:
    """The channels libjpeg decodes this image to when it is a plain 8-bit grey or
    colour JPEG without transparency (what the fast, region and device decoders take);
    None for anything else, which Pillow decodes."""
    channels = _FAST_MODES.get(fmt, {}).get(image.mode)
    if channels is None or "transparency" in image.info or _tile_rawmode(image) != image.mode:
        return None
    return channels


def _decode_fast(data: bytes, image: ImageFile.ImageFile, fmt: str) -> torch.Tensor | None:
    """A plain 8-bit grey or colour JPEG decoded by libjpeg-turbo straight into a tensor:
    by the region decoder over the whole image where it is built, else by torchvision.
    Both use libjpeg's default settings, as Pillow does, so the pixels are Pillow's
    (tested). None means "let Pillow do it" (also on errors, so that corrupt files get
    Pillow's clearer diagnosis and both paths fail alike)."""
    channels = fast_channels(image, fmt)
    if channels is None:
        return None
    width, height = image.size
    whole = jpeg_region.decode_window(data, 1, (0, 0, height, width))
    pixels = whole[0] if whole is not None else _decode_with_torchvision(data)
    if pixels is None or pixels.dtype != torch.uint8 or tuple(pixels.shape) != (
        channels, height, width,
    ):  # fmt: skip
        return None
    return pixels


def _decode_with_torchvision(data: bytes) -> torch.Tensor | None:
    decode = _torchvision_decoder()
    if decode is None:
        return None
    try:
        return decode(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    except RuntimeError:
        return None


@functools.cache
def _torchvision_decoder() -> Callable[[torch.Tensor], torch.Tensor] | None:
    """torchvision's ``decode_image``, imported on first use: importing torchvision loads
    its models and ``torch._dynamo``, about a third of the service's start, and only a
    replica without the region decoder needs it. (Its image IO is deprecated since 0.29,
    superseded by TorchCodec; Pillow covers its absence.)"""
    try:
        from torchvision.io import ImageReadMode, decode_image
    except ImportError:  # pragma: no cover - depends on the installed torchvision
        return None
    return functools.partial(
        decode_image, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=False
    )


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
        raise _undecodable(exc, label, fmt, "data", otherwise="corrupt") from exc


def _undecodable(
    exc: BaseException, label: str, fmt: str, part: str, *, otherwise: str
) -> UndecodableImage:
    what = "truncated" if _looks_truncated(exc) else otherwise
    return UndecodableImage(f"{label}: {what} {_FORMAT_NAMES[fmt]} {part} ({_reason(exc)})")


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
    return contiguous_pixels(pixels)


def contiguous_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """Make a CPU uint8 tensor C-contiguous. torchvision returns CHW views of HWC memory, and
    numpy's strided copy does that transpose in half the time of torch's single-threaded
    one; it is a large part of a whole JPEG decode."""
    if pixels.is_contiguous():
        return pixels
    return torch.from_numpy(np.ascontiguousarray(pixels.numpy()))
