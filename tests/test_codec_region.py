"""Decoding only the region a sample reads (``codec.jpeg_region``): the box holds exactly
a whole decode's pixels, for every subsampling, progressive files, grey, every DCT scale
and EXIF orientation, and planned region decodes give the engine's output to the bit,
over generated recipes, sizes and keys. Files the decoder refuses decode whole, with
their errors unchanged."""

from __future__ import annotations

import io
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from augsvc.codec import ScaledImage, jpeg_region, probe_image
from augsvc.engine import augment, compile_plan
from augsvc.errors import UndecodableImage, ValidationFailed
from augsvc.pipeline.decode import PlannedDecode, plan_decode
from augsvc.recipes import parse_recipe
from tests import imagegen
from tests.photos import photo

MAX_PIXELS = 10**8

needs_decoder = pytest.mark.skipif(
    not jpeg_region.AVAILABLE,
    reason="the region decoder (augsvc/codec/_jpeg_region.c) is not built",
)


def _build_tools_present() -> bool:
    include = Path(sysconfig.get_paths()["include"])
    return (include / "Python.h").is_file() and Path("/usr/include/jpeglib.h").is_file()


def test_the_region_decoder_is_built_where_it_can_be() -> None:
    """``make install`` brings the compiler and headers; a silent fallback would hide a
    broken build behind slower decodes."""
    if not _build_tools_present():
        pytest.skip("no Python or libjpeg headers here: JPEGs decode whole")
    assert jpeg_region.AVAILABLE


def _jpeg(
    array: np.ndarray,
    *,
    subsampling: int = 2,
    progressive: bool = False,
    orientation: int | None = None,
    quality: int = 90,
) -> bytes:
    options: dict[str, object] = {
        "quality": quality,
        "subsampling": subsampling,
        "progressive": progressive,
    }
    if orientation is not None:
        options["exif"] = imagegen.exif_with_orientation(orientation)
    image = Image.fromarray(array if array.shape[-1] == 3 else array[..., 0])
    return imagegen.encode(image, "JPEG", **options)


def _array(height: int, width: int) -> np.ndarray:
    return photo(height, width).permute(1, 2, 0).numpy()


def _random_box(rng: np.random.Generator, h: int, w: int) -> tuple[int, int, int, int]:
    top, left = int(rng.integers(0, h)), int(rng.integers(0, w))
    return top, left, int(rng.integers(top + 1, h + 1)), int(rng.integers(left + 1, w + 1))


@needs_decoder
@pytest.mark.parametrize("subsampling", [0, 1, 2])
@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("size", [(375, 500), (251, 333)])
def test_the_box_holds_exactly_a_whole_decode(
    subsampling: int, progressive: bool, size: tuple[int, int]
) -> None:
    data = _jpeg(_array(*size), subsampling=subsampling, progressive=progressive)
    rng = np.random.default_rng(subsampling * 2 + progressive)
    for scale in (1, 2, 4, 8):
        whole = probe_image(data, max_pixels=MAX_PIXELS).decode_scaled(scale).pixels
        for _ in range(6):
            box = _random_box(rng, *whole.shape[1:])
            part = probe_image(data, max_pixels=MAX_PIXELS).decode_region(scale, box)
            top, left, bottom, right = box
            assert part.region == box
            assert part.frame_hw == tuple(whole.shape[1:])
            assert torch.equal(part.pixels, whole[:, top:bottom, left:right])


@needs_decoder
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_decodes_the_displayed_box(orientation: int) -> None:
    for channels in (3, 1):
        array = _array(203, 317)
        data = _jpeg(array if channels == 3 else array[..., :1], orientation=orientation)
        rng = np.random.default_rng(orientation)
        for scale in (1, 2, 4):
            header = probe_image(data, max_pixels=MAX_PIXELS)
            whole = probe_image(data, max_pixels=MAX_PIXELS).decode_scaled(scale)
            for _ in range(4):
                box = _random_box(rng, *whole.pixels.shape[1:])
                part = probe_image(data, max_pixels=MAX_PIXELS).decode_region(scale, box)
                top, left, bottom, right = box
                assert part.full_hw == whole.full_hw == header.displayed_hw
                if whole.to_pixels is None:
                    assert part.to_pixels is None
                else:
                    np.testing.assert_array_equal(part.to_pixels, whole.to_pixels)
                assert part.region == box
                assert part.frame_hw == tuple(whole.pixels.shape[1:])
                assert torch.equal(part.pixels, whole.pixels[:, top:bottom, left:right])


def test_a_file_cut_below_the_region_is_still_refused() -> None:
    """Decoding stops after the region's last row, so a file cut short lower down is
    not decoded by region: it decodes whole and is refused as truncated."""
    data = _jpeg(_array(400, 300))
    cut = data[: int(len(data) * 0.8)]
    with pytest.raises(UndecodableImage, match="truncated"):
        probe_image(cut, max_pixels=MAX_PIXELS, name="x.jpg").decode_region(1, (0, 0, 16, 16))


@needs_decoder
def test_corrupt_data_inside_the_region_falls_back_to_the_whole_decode() -> None:
    """Any libjpeg warning in what the region decoder read makes it decode whole, so the
    pixels (or the error) are a whole decode's."""
    data = bytearray(_jpeg(_array(240, 320), quality=95))
    start = data.index(b"\xff\xda")  # start of scan
    for offset in range(start + 40, start + 400, 37):
        data[offset] ^= 0x5A
    data = bytes(data)
    try:
        whole = probe_image(data, max_pixels=MAX_PIXELS).decode_scaled(1).pixels
    except UndecodableImage as exc:
        with pytest.raises(UndecodableImage) as part:
            probe_image(data, max_pixels=MAX_PIXELS).decode_region(1, (0, 0, 240, 320))
        assert part.value.detail == exc.detail
        return
    got = probe_image(data, max_pixels=MAX_PIXELS).decode_region(1, (0, 0, 240, 320))
    assert torch.equal(got.pixels, whole)


def test_other_formats_and_cmyk_decode_whole() -> None:
    png = imagegen.png_bytes(40, 30)
    part = probe_image(png, max_pixels=MAX_PIXELS).decode_region(1, (0, 0, 4, 4))
    assert part.region is None
    assert torch.equal(part.pixels, probe_image(png, max_pixels=MAX_PIXELS).decode())
    cmyk = imagegen.encode(Image.new("CMYK", (40, 32), (10, 200, 30, 5)), "JPEG")
    part = probe_image(cmyk, max_pixels=MAX_PIXELS).decode_region(1, (0, 0, 4, 4))
    assert part.region is None


# ----------------------------------------------------------------------------------------
# Planned region decodes through the engine: the same bytes as decoding whole
# ----------------------------------------------------------------------------------------

OPS = st.sampled_from(
    [
        {"op": "random_resized_crop", "size": 48},
        {"op": "random_resized_crop", "size": [40, 56], "scale": [0.05, 0.5]},
        {"op": "rotate", "degrees": 40},
        {"op": "hflip"},
        {"op": "vflip", "p": 0.5},
        {"op": "affine", "degrees": 20, "translate": [0.2, 0.2], "scale": [0.5, 1.5]},
        {"op": "perspective", "distortion_scale": 0.4, "p": 0.7},
        {"op": "resize", "size": [37, 41]},
        {"op": "crop", "size": 64},
    ]
)
OUTPUT = st.fixed_dictionaries(
    {
        "interpolation": st.sampled_from(["bilinear", "nearest", "bicubic"]),
        "padding_mode": st.sampled_from(["constant", "border", "reflection"]),
    }
)


def _whole_decode(planned: PlannedDecode, data: bytes) -> PlannedDecode:
    """The same plan decoded whole, from fresh headers (a header decodes once)."""
    headers = [probe_image(data, max_pixels=MAX_PIXELS) for _ in planned.headers]
    return PlannedDecode(headers, planned.scales)


@needs_decoder
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(OPS, min_size=1, max_size=3),
    output=OUTPUT,
    size=st.sampled_from([(375, 500), (333, 251), (96, 130)]),
    orientation=st.sampled_from([1, 3, 6, 8]),
    progressive=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_planned_region_decodes_give_the_whole_decodes_bytes(
    ops: list[dict], output: dict, size, orientation: int, progressive: bool, seed: int
) -> None:
    recipe = {"ops": [*ops, {"op": "resize", "size": [32, 32]}], "output": output}
    plan = compile_plan(parse_recipe(recipe))
    data = _jpeg(_array(*size), orientation=orientation, progressive=progressive)
    keys = list(range(seed % 1000, seed % 1000 + 6))
    headers = [probe_image(data, max_pixels=MAX_PIXELS) for _ in keys]
    planned = plan_decode(plan, headers, seed=seed, keys=keys)
    parts = planned.decode()
    assert all(p.region is not None for p in parts)
    whole = _whole_decode(planned, data).decode()
    got = augment(plan, parts, seed=seed, keys=keys).images
    expected = augment(plan, whole, seed=seed, keys=keys).images
    assert torch.equal(got, expected)


@needs_decoder
def test_a_large_photos_crops_decode_a_fraction_and_match() -> None:
    """The case this exists for: random crops of a 2048x1536 photo decode a fraction of
    its pixels (and hold no more in memory), to the same output."""
    plan = compile_plan(parse_recipe({"ops": [{"op": "random_resized_crop", "size": 224}]}))
    data = _jpeg(_array(1536, 2048))
    keys = list(range(16))
    planned = plan_decode(
        plan, [probe_image(data, max_pixels=MAX_PIXELS) for _ in keys], seed=5, keys=keys
    )
    boxes = np.array(planned.boxes, dtype=np.int64)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    full = np.array(
        [np.prod(h.decoded_hw(s)) for h, s in zip(planned.headers, planned.scales, strict=True)]
    )
    assert (areas / full).mean() < 0.8
    parts = planned.decode()
    held = np.array([p.pixels[0].numel() for p in parts])
    np.testing.assert_array_equal(held, areas)
    got = augment(plan, parts, seed=5, keys=keys).images
    expected = augment(plan, _whole_decode(planned, data).decode(), seed=5, keys=keys).images
    assert torch.equal(got, expected)


def test_the_engine_refuses_to_read_outside_a_decoded_region() -> None:
    plan = compile_plan(parse_recipe({"ops": [{"op": "resize", "size": [16, 16]}]}))
    pixels = photo(64, 80)
    short = ScaledImage(pixels[:, :32], (64, 80), None, (0, 0, 32, 80), (64, 80))
    with pytest.raises(RuntimeError, match="planned for other draws"):
        augment(plan, [short], seed=0)
    with pytest.raises(ValidationFailed, match="size of its region"):
        augment(plan, [ScaledImage(pixels, (64, 80), None, (0, 0, 32, 80), (64, 80))], seed=0)
    whole = ScaledImage(pixels, (64, 80), None, (0, 0, 64, 80), (64, 80))
    with pytest.raises(ValidationFailed, match="region-first"):
        augment(plan, [whole], seed=0, region_first=False)
    assert torch.equal(
        augment(plan, [whole], seed=0).images, augment(plan, [pixels], seed=0).images
    )


def test_without_the_decoder_planning_asks_for_whole_decodes(monkeypatch) -> None:
    monkeypatch.setattr(jpeg_region, "AVAILABLE", False)
    plan = compile_plan(parse_recipe({"ops": [{"op": "random_resized_crop", "size": 32}]}))
    data = io.BytesIO(_jpeg(_array(120, 160))).getvalue()
    planned = plan_decode(plan, [probe_image(data, max_pixels=MAX_PIXELS)], seed=0, keys=[0])
    assert planned.boxes is None
    assert planned.decode()[0].region is None


# ----------------------------------------------------------------------------------------
# Damaged files: the C decoder must refuse or agree, never crash or read past a buffer
# ----------------------------------------------------------------------------------------

_FUZZ_BASE = [
    _jpeg(_array(96, 128), subsampling=2),
    _jpeg(_array(80, 72), subsampling=1, progressive=True),
    _jpeg(_array(64, 96)[..., :1]),
]


def _damage(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    kind = rng.integers(0, 4)
    if kind == 0:  # flip bytes anywhere, header included
        for at in rng.integers(2, len(out), rng.integers(1, 12)):
            out[at] ^= int(rng.integers(1, 256))
    elif kind == 1:  # a marker where entropy data should be
        at = int(rng.integers(len(out) // 3, len(out) - 2))
        out[at : at + 2] = bytes([0xFF, int(rng.choice([0xC0, 0xC4, 0xDA, 0xDB, 0xD9, 0xE1]))])
    elif kind == 2:  # cut, then end as a complete file would
        out = out[: int(rng.integers(20, len(out)))] + b"\xff\xd9"
    else:  # a stretch of the scan replaced
        at = int(rng.integers(len(out) // 4, len(out) - 40))
        out[at : at + 32] = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
    return bytes(out)


@needs_decoder
@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, len(_FUZZ_BASE) - 1))
def test_damaged_jpegs_are_refused_or_decode_as_a_whole_decode_does(seed: int, which: int) -> None:
    rng = np.random.default_rng(seed)
    data = _damage(_FUZZ_BASE[which], rng)
    scale = int(rng.choice([1, 2, 4]))
    try:
        whole = probe_image(data, max_pixels=MAX_PIXELS).decode_scaled(scale)
    except UndecodableImage as exc:
        # Refused whatever the box: the decoder reads the whole file, not just its rows.
        with pytest.raises(UndecodableImage) as again:
            probe_image(data, max_pixels=MAX_PIXELS).decode_region(scale, (0, 0, 1, 1))
        assert again.value.detail == exc.detail
        return
    box = _random_box(rng, *whole.pixels.shape[1:])
    part = probe_image(data, max_pixels=MAX_PIXELS).decode_region(scale, box)
    top, left, bottom, right = box
    expected = whole.pixels[:, top:bottom, left:right] if part.region else whole.pixels
    assert torch.equal(part.pixels, expected)


@needs_decoder
def test_damage_below_the_region_sends_the_file_to_the_whole_decode() -> None:
    """Bytes damaged near the end of the scan: the region decoder, which reads the rest
    of the file too, refuses it, and the whole decode's pixels (or error) are used."""
    data = bytearray(_jpeg(_array(480, 640)))
    for at in range(len(data) - 3000, len(data) - 200, 97):
        data[at] ^= 0x33
    data = bytes(data)
    part = probe_image(data, max_pixels=MAX_PIXELS).decode_region(1, (0, 0, 40, 40))
    assert part.region is None
    assert torch.equal(part.pixels, probe_image(data, max_pixels=MAX_PIXELS).decode())


def test_the_decoder_refuses_windows_and_buffers_that_do_not_fit() -> None:
    if not jpeg_region.AVAILABLE:
        pytest.skip("the region decoder is not built")
    from augsvc.codec import _jpeg_region  # type: ignore[attr-defined]

    data = _jpeg(_array(64, 80))
    assert _jpeg_region.window(data, 1, 0, 0, 65, 10) is None  # below the image
    assert _jpeg_region.window(data, 1, 5, 5, 5, 9) is None  # empty
    assert _jpeg_region.window(b"not a jpeg", 1, 0, 0, 4, 4) is None
    with pytest.raises(ValueError, match="scale"):
        _jpeg_region.window(data, 3, 0, 0, 4, 4)
    top, left, bottom, right, channels = _jpeg_region.window(data, 1, 10, 20, 30, 40)
    short = np.empty((bottom - top) * (right - left) * channels - 1, dtype=np.uint8)
    with pytest.raises(ValueError, match="does not fit"):
        _jpeg_region.decode_window(data, 1, top, left, bottom, right, short)
    grey_sized = np.empty((bottom - top) * (right - left), dtype=np.uint8)
    assert _jpeg_region.decode_window(data, 1, top, left, bottom, right, grey_sized) is False
    with pytest.raises(BufferError):
        _jpeg_region.decode_window(data, 1, top, left, bottom, right, b"read-only")
    off_grid = np.empty((bottom - top) * (right - left - 1) * channels, dtype=np.uint8)
    assert _jpeg_region.decode_window(data, 1, top, left + 1, bottom, right, off_grid) is False


@needs_decoder
def test_a_batch_mixing_region_and_whole_decodes_gives_the_whole_decodes_bytes() -> None:
    damaged = bytearray(_jpeg(_array(480, 640)))
    for at in range(len(damaged) - 3000, len(damaged) - 200, 97):
        damaged[at] ^= 0x33
    files = [bytes(damaged), _jpeg(_array(480, 640)), imagegen.png_bytes(200, 150)]
    plan = compile_plan(parse_recipe({"ops": [{"op": "random_resized_crop", "size": 40}]}))
    keys = [3, 4, 5]
    planned = plan_decode(
        plan, [probe_image(d, max_pixels=MAX_PIXELS) for d in files], seed=2, keys=keys
    )
    parts = planned.decode()
    assert [p.region is not None for p in parts] == [False, True, False]
    whole = PlannedDecode(
        [probe_image(d, max_pixels=MAX_PIXELS) for d in files], planned.scales
    ).decode()
    got = augment(plan, parts, seed=2, keys=keys).images
    expected = augment(plan, whole, seed=2, keys=keys).images
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
