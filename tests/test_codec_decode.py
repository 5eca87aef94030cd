"""augsvc.codec.decode: every format and mode to the documented channels, EXIF orientation,
and bad uploads refused with typed errors before any pixel is decoded."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from augsvc import codec
from augsvc.codec import decode as decoding
from augsvc.codec import jpeg_region
from augsvc.errors import ImageTooLarge, UndecodableImage
from tests import imagegen
from tests.codec_helpers import (
    MAX_PIXELS,
    decode,
    decode_with_pillow_only,
    mean_abs_error,
    to_chw,
)

# codec uses torchvision.io on purpose (fast JPEG path); its per-call deprecation
# warning (torchvision 0.29, successor TorchCodec) is not this suite's subject.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision:DeprecationWarning"
)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_png_round_trip_is_exact(mode: str) -> None:
    original = imagegen.make_image(37, 23, mode, seed=3)
    decoded = decode(imagegen.encode(original, "PNG"))
    assert decoded.dtype == torch.uint8
    assert decoded.is_contiguous()
    assert torch.equal(decoded, to_chw(original))


def test_jpeg_decodes_close_to_original() -> None:
    original = imagegen.make_image(160, 120, "RGB", seed=1)
    decoded = decode(imagegen.encode(original, "JPEG", quality=90))
    assert decoded.shape == (3, 120, 160)
    assert mean_abs_error(decoded, to_chw(original)) < 2.0


def test_sample_photo_is_a_500x375_rgb_jpeg() -> None:
    data = codec.sample_photo_bytes()
    assert data[:3] == b"\xff\xd8\xff"
    assert len(data) < 60_000
    photo = decode(data, "sample.jpg")
    assert photo.shape == (3, 375, 500)
    assert 40 < photo.float().mean().item() < 220  # a real picture, not a flat fill
    assert photo.float().std().item() > 20
    assert imagegen.photo_jpeg() == data


#: Plain JPEGs in the stored frame (no EXIF orientation): what the fast decoders take.
FAST_JPEGS = {
    "jpeg-420": imagegen.jpeg_bytes(161, 97, seed=2),
    "jpeg-444": imagegen.jpeg_bytes(64, 48, seed=2, quality=100),
    "jpeg-prog": imagegen.jpeg_bytes(64, 48, seed=4, progressive=True),
    "jpeg-grey": imagegen.jpeg_bytes(64, 48, seed=5, mode="L"),
    "photo": imagegen.photo_jpeg(),
}


@pytest.mark.parametrize(
    "data",
    [
        *(pytest.param(data, id=name) for name, data in FAST_JPEGS.items()),
        pytest.param(imagegen.jpeg_bytes(64, 48, seed=6, orientation=6), id="jpeg-exif6"),
        pytest.param(imagegen.png_bytes(33, 17, "RGBA"), id="png-rgba"),
        pytest.param(imagegen.png_bytes(33, 17, "L", orientation=8), id="png-exif8"),
    ],
)
def test_fast_path_matches_pillow_exactly(data: bytes) -> None:
    assert torch.equal(decode(data), decode_with_pillow_only(data))


@pytest.mark.parametrize("data", [pytest.param(d, id=n) for n, d in FAST_JPEGS.items()])
def test_each_fast_decoder_gives_pillows_pixels(data: bytes) -> None:
    """The fast path takes the region decoder where it is built and torchvision where
    not: both must give Pillow's pixels, the stored frame before orientation."""
    expected = decode_with_pillow_only(data)
    assert torch.equal(decoding._decode_with_torchvision(data), expected)
    if jpeg_region.AVAILABLE:
        h, w = expected.shape[1:]
        whole, box = jpeg_region.decode_window(data, 1, (0, 0, h, w))
        assert box == (0, 0, h, w) and torch.equal(whole, expected)


def test_starting_the_service_does_not_import_torchvision() -> None:
    """Importing torchvision loads its models and torch._dynamo, a third of the
    service's start; the service needs it only on a replica without the region decoder."""
    probe = "import sys, augsvc.api.app; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_exif_transpose(orientation: int) -> None:
    data = imagegen.png_bytes(30, 20, "RGB", seed=orientation, orientation=orientation)
    expected = to_chw(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    assert torch.equal(decode(data), expected)
    assert torch.equal(decode_with_pillow_only(data), expected)


def test_exif_orientation_6_rotates_jpeg_clockwise() -> None:
    array = np.full((40, 60, 3), 128, np.uint8)  # landscape as stored: H=40, W=60
    array[:8, :8] = (255, 0, 0)  # red marker at the stored top-left
    data = imagegen.encode(
        Image.fromarray(array), "JPEG", quality=95, exif=imagegen.exif_with_orientation(6)
    )
    decoded = decode(data)
    assert decoded.shape == (3, 60, 40)  # displayed portrait
    # Rotating 90 degrees clockwise moves the top-left corner to the top-right.
    top_right = decoded[:, :8, -8:].float().mean(dim=(1, 2))
    assert top_right[0] > 200 and top_right[1] < 60 and top_right[2] < 60
    top_left = decoded[:, :8, :8].float().mean(dim=(1, 2))
    assert abs(top_left - 128).max() < 10


def test_broken_exif_is_ignored_not_fatal() -> None:
    original = imagegen.make_image(20, 10, "RGB")
    data = imagegen.encode(original, "PNG", exif=b"Exif\x00\x00garbage-not-tiff")
    assert torch.equal(decode(data), to_chw(original))


EXPECTED_CHANNELS = {
    ("JPEG", "L"): 1,
    ("JPEG", "RGB"): 3,
    ("JPEG", "CMYK"): 3,
    ("PNG", "1"): 1,
    ("PNG", "L"): 1,
    ("PNG", "LA"): 4,
    ("PNG", "P"): 3,
    ("PNG", "RGB"): 3,
    ("PNG", "RGBA"): 4,
    ("PNG", "I;16"): 1,
    ("WEBP", "RGB"): 3,
    ("WEBP", "RGBA"): 4,
    ("BMP", "RGB"): 3,
    ("BMP", "L"): 1,
    ("GIF", "P"): 3,
    ("GIF", "L"): 1,
    ("TIFF", "RGB"): 3,
    ("TIFF", "RGBA"): 4,
    ("TIFF", "CMYK"): 3,
    ("TIFF", "I;16"): 1,
    ("TIFF", "F"): 1,
}


def test_every_generated_format_mode_is_covered() -> None:
    assert set(EXPECTED_CHANNELS) == set(imagegen.FORMAT_MODES)


@pytest.mark.parametrize(("fmt", "mode"), list(EXPECTED_CHANNELS))
def test_format_and_mode_decode_to_documented_channels(fmt: str, mode: str) -> None:
    data = imagegen.image_bytes(fmt, 45, 31, mode, seed=1)
    decoded = decode(data, f"x.{fmt.lower()}")
    assert decoded.dtype == torch.uint8
    assert decoded.is_contiguous()
    assert decoded.shape == (EXPECTED_CHANNELS[fmt, mode], 31, 45)
    assert decoded.float().std().item() > 5  # content survived, not a blank plane


def test_write_images_writes_every_format(tmp_path) -> None:
    paths = imagegen.write_images(tmp_path)
    assert len(paths) == len(imagegen.FORMAT_MODES)
    for key, path in paths.items():
        assert decode(path.read_bytes(), path.name).shape[1:] == (48, 64), key


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF"])
def test_lossless_formats_round_trip_exactly(fmt: str) -> None:
    original = imagegen.make_image(29, 19, "RGB", seed=9)
    data = imagegen.encode(original, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    assert torch.equal(decode(data), to_chw(original))


def test_la_becomes_rgba_with_grey_replicated() -> None:
    original = imagegen.make_image(16, 8, "LA", seed=2)
    decoded = decode(imagegen.encode(original, "PNG"))
    grey, alpha = to_chw(original)
    assert decoded.shape == (4, 8, 16)
    for channel in range(3):
        assert torch.equal(decoded[channel], grey)
    assert torch.equal(decoded[3], alpha)


def test_palette_with_transparency_becomes_rgba() -> None:
    image = imagegen.make_image(16, 8, "P", seed=2)
    transparent_index = image.getpixel((0, 0))
    decoded = decode(imagegen.encode(image, "PNG", transparency=transparent_index))
    assert decoded.shape == (4, 8, 16)
    assert decoded[3, 0, 0] == 0
    expected_rgb = to_chw(image.convert("RGB"))
    assert torch.equal(decoded[:3], expected_rgb)


def test_rgb_with_transparent_colour_becomes_rgba() -> None:
    array = np.zeros((4, 4, 3), np.uint8)
    array[0, 0] = (1, 2, 3)
    data = imagegen.encode(Image.fromarray(array), "PNG", transparency=(1, 2, 3))
    decoded = decode(data)
    assert decoded.shape == (4, 4, 4)
    assert decoded[3, 0, 0] == 0 and decoded[3, 1, 1] == 255


def test_grey_palette_becomes_one_channel_and_colour_palette_three() -> None:
    grey = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).convert("P")
    grey.putpalette([v for i in range(256) for v in (i, i, i)])
    assert decode(imagegen.encode(grey, "PNG")).shape == (1, 8, 8)
    colour = imagegen.make_image(8, 8, "P")
    decoded = decode(imagegen.encode(colour, "PNG"))
    assert torch.equal(decoded, to_chw(colour.convert("RGB")))


def test_one_bit_becomes_0_and_255() -> None:
    array = np.zeros((8, 16), bool)
    array[:, 8:] = True
    decoded = decode(imagegen.encode(Image.fromarray(array), "PNG"))
    assert decoded.shape == (1, 8, 16)
    assert set(decoded.unique().tolist()) == {0, 255}
    assert (decoded[0, :, 8:] == 255).all()


def test_sixteen_bit_grey_keeps_high_byte() -> None:
    values = np.array([[0, 255, 256, 32768, 65535, 257 * 100]], dtype=np.uint16)
    decoded = decode(imagegen.encode(Image.fromarray(values), "PNG"))
    assert decoded.shape == (1, 1, 6)
    assert decoded[0, 0].tolist() == [0, 0, 1, 128, 255, 100]


def test_sixteen_bit_rgb_png_keeps_high_byte() -> None:
    # Pillow cannot write 16-bit RGB; build a tiny one by hand (IHDR bit depth 16).
    rows = b"".join(b"\x00" + struct.pack(">HHH", 65535, 256 * 7, 0) * 2 for _ in range(2))
    data = imagegen.raw_png(2, 2, rows, bit_depth=16, colour_type=2)
    decoded = decode(data)
    assert decoded.shape == (3, 2, 2)
    assert decoded[:, 0, 0].tolist() == [255, 7, 0]


def test_float_grey_scaled_from_unit_range() -> None:
    values = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    decoded = decode(imagegen.encode(Image.fromarray(values), "TIFF"))
    assert decoded[0, 0].tolist() == [0, 128, 255]


@pytest.mark.parametrize(
    ("mode", "channels"),
    [
        ("YCbCr", 3),
        ("LAB", 3),
        ("HSV", 3),
        ("RGBX", 3),
        ("CMYK", 3),
        ("RGBa", 4),
        ("La", 4),
        ("PA", 4),
        ("I", 1),
        ("F", 1),
        ("I;16", 1),
        ("1", 1),
    ],
)
def test_in_memory_modes_map_to_documented_channels(mode: str, channels: int) -> None:
    image = Image.new(mode, (5, 3))
    assert decoding._image_to_tensor(image).shape == (channels, 3, 5)


def test_wide_int_range_is_stretched() -> None:
    image = Image.fromarray(np.array([[-1000, 0, 1000]], dtype=np.int32))
    assert image.mode == "I"
    assert decoding._image_to_tensor(image)[0, 0].tolist() == [0, 128, 255]


def test_gif_decodes_first_frame() -> None:
    first = np.zeros((10, 12, 3), np.uint8)
    first[:, :6] = (255, 0, 0)
    first[:, 6:] = (0, 0, 255)
    second = np.zeros((10, 12, 3), np.uint8)
    second[:] = (0, 255, 0)
    decoded = decode(imagegen.gif_bytes([first, second]), "anim.gif")
    assert decoded.shape == (3, 10, 12)
    assert torch.equal(decoded, torch.from_numpy(np.moveaxis(first, -1, 0).copy()))


NASTY = imagegen.nasty_corpus()


@pytest.mark.parametrize(
    ("case", "name", "words"),
    [
        ("zero_bytes", "a.jpg", ["a.jpg", "empty", "0 bytes"]),
        ("text_named_jpg", "notes.jpg", ["notes.jpg", "not a recognised image format", "WebP"]),
        ("random_bytes", "r.bin", ["r.bin", "not a recognised image format"]),
        ("truncated_jpeg", "half.jpg", ["half.jpg", "truncated JPEG data"]),
        ("truncated_png", "half.png", ["half.png", "truncated PNG data"]),
        ("jpeg_header_then_garbage", "g.jpg", ["g.jpg", "JPEG"]),
    ],
)
def test_bad_uploads_are_undecodable(case: str, name: str, words: list[str]) -> None:
    with pytest.raises(UndecodableImage) as info:
        decode(NASTY[case], name)
    assert type(info.value) is UndecodableImage
    for word in words:
        assert word in info.value.detail


def test_decompression_bomb_header_is_refused_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge) as info:
        decode(NASTY["png_bomb_30000"], "bomb.png")
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5
    assert type(info.value) is ImageTooLarge
    assert "bomb.png" in info.value.detail
    assert "30000x30000" in info.value.detail
    assert str(MAX_PIXELS) in info.value.detail


def test_pixel_limit_is_per_call_not_pillow_global(monkeypatch: pytest.MonkeyPatch) -> None:
    data = imagegen.png_bytes(100, 100)
    with pytest.raises(ImageTooLarge):
        decode(data, max_pixels=9_999)
    assert decode(data, max_pixels=10_000).shape == (3, 100, 100)
    # Pillow's process-global bomb limit (error above 2x) plays no part.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert decode(data, max_pixels=10_000).shape == (3, 100, 100)
    assert decode(imagegen.jpeg_bytes(100, 100), max_pixels=10_000).shape == (3, 100, 100)


def test_png_with_less_data_than_its_header_claims_is_undecodable() -> None:
    # torchvision 0.29's PNG decoder segfaults on exactly this file; codec must not use it.
    data = imagegen.png_with_declared_size(300, 200)
    with pytest.raises(UndecodableImage, match="truncated PNG data"):
        decode(data, "short.png")


def test_jpeg_header_size_is_checked_before_decoding() -> None:
    data = imagegen.jpeg_bytes(64, 48)
    with pytest.raises(ImageTooLarge, match="64x48"):
        decode(data, max_pixels=64 * 48 - 1)


def test_unsupported_but_real_format_is_refused() -> None:
    data = imagegen.encode(imagegen.make_image(8, 8), "PPM")
    with pytest.raises(UndecodableImage, match="not a recognised image format"):
        decode(data)


def test_bmp_magic_with_garbage_is_undecodable() -> None:
    with pytest.raises(UndecodableImage, match="BMP"):
        decode(b"BM" + b"\x00" * 40, "x.bmp")
