"""JPEGs decoded at the scale their sample's warp can use (DCT scaling), against decoding
them whole: the map to the scaled pixels, EXIF orientation, errors, and the output bound
(mean absolute error at most 2 grey levels per sample, PSNR at least 38 dB per photo)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from augsvc.codec import jpeg_region, probe_image
from augsvc.engine import augment, compile_plan
from augsvc.errors import UndecodableImage
from augsvc.maths import geometry
from augsvc.pipeline.decode import plan_decode
from augsvc.recipes import parse_recipe
from tests import imagegen
from tests.photos import photo

MAX_PIXELS = 10**8
KEYS = list(range(24))


def _jpeg(array: np.ndarray, orientation: int | None = None, quality: int = 90) -> bytes:
    options: dict[str, object] = {"quality": quality}
    if orientation is not None:
        options["exif"] = imagegen.exif_with_orientation(orientation)
    return imagegen.encode(Image.fromarray(array), "JPEG", **options)


def _photos() -> list[bytes]:
    """The bundled photo as shipped, and at two other sizes (not multiples of 8)."""
    out = [imagegen.photo_jpeg()]
    for h, w in [(601, 803), (245, 331)]:
        out.append(_jpeg(photo(h, w).permute(1, 2, 0).numpy()))
    return out


def _centroid(plane: torch.Tensor) -> tuple[float, float]:
    h, w = plane.shape
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    weights = plane.double() / plane.double().sum()
    return float((weights * xx).sum()), float((weights * yy).sum())


def _blob_jpeg(width: int, height: int, orientation: int) -> bytes:
    yy, xx = np.mgrid[0:height, 0:width]
    blob = 255 * np.exp(-((xx - 0.75 * width) ** 2 + (yy - 0.25 * height) ** 2) / (2 * 9.0**2))
    return _jpeg(np.repeat(blob.round().astype(np.uint8)[..., None], 3, -1), orientation)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_scaled_map_puts_a_marker_where_the_full_image_has_it(orientation: int) -> None:
    """A blob in a JPEG, every EXIF orientation: its centroid in the scaled pixels is
    where ``to_pixels`` maps its centroid in the full displayed image. 331x245 has a
    partial last DCT block on both axes; 336x248 has none."""
    for width, height in [(331, 245), (336, 248)]:
        data = _blob_jpeg(width, height, orientation)
        full = probe_image(data, max_pixels=MAX_PIXELS).decode()
        where = _centroid(full[0])
        for scale in (2, 4, 8):
            header = probe_image(data, max_pixels=MAX_PIXELS)
            scaled = header.decode_scaled(scale)
            assert scaled.full_hw == tuple(full.shape[1:]) == header.displayed_hw
            assert tuple(scaled.pixels.shape[1:]) == header.decoded_hw(scale)
            assert header.decoded_pixels(scale) == scaled.pixels[0].numel()
            if width % scale and orientation not in (1, 5):
                # a reversed axis with a partial block decodes whole (see _usable_scale)
                assert scaled.to_pixels is None
                continue
            assert scaled.pixels.shape[1] == -(-full.shape[1] // scale)
            expected = geometry.apply_points(scaled.to_pixels[None], np.array([[where]]))[0, 0]
            assert math.dist(_centroid(scaled.pixels[0]), expected) < 0.25, (scale, width)


def test_scale_one_and_other_formats_decode_whole() -> None:
    for data in (imagegen.photo_jpeg(), imagegen.png_bytes(40, 30)):
        header = probe_image(data, max_pixels=MAX_PIXELS)
        scaled = probe_image(data, max_pixels=MAX_PIXELS).decode_scaled(1 if header.scalable else 4)
        assert scaled.to_pixels is None
        assert torch.equal(scaled.pixels, probe_image(data, max_pixels=MAX_PIXELS).decode())
    png = probe_image(imagegen.png_bytes(40, 30), max_pixels=MAX_PIXELS)
    assert not png.scalable and png.decoded_pixels(8) == 40 * 30


@pytest.mark.parametrize("case", ["truncated_jpeg", "jpeg_header_then_garbage"])
def test_broken_jpegs_fail_alike_at_every_scale(case: str) -> None:
    data = imagegen.nasty_corpus()[case]
    with pytest.raises(UndecodableImage) as whole:
        probe_image(data, max_pixels=MAX_PIXELS, name="x.jpg").decode()
    for scale in (2, 4, 8):
        with pytest.raises(UndecodableImage) as scaled:
            probe_image(data, max_pixels=MAX_PIXELS, name="x.jpg").decode_scaled(scale)
        assert type(scaled.value) is UndecodableImage
        assert scaled.value.detail == whole.value.detail
    for scale in (1, 2, 4):  # and when only a region is asked for
        with pytest.raises(UndecodableImage) as part:
            probe_image(data, max_pixels=MAX_PIXELS, name="x.jpg").decode_region(
                scale, (0, 0, 8, 8)
            )
        assert part.value.detail == whole.value.detail


RECIPES = {
    "crop": {"ops": [{"op": "random_resized_crop", "size": 64}, {"op": "hflip"}]},
    "rotate_crop": {
        "ops": [
            {"op": "rotate", "degrees": 30},
            {"op": "random_resized_crop", "size": [48, 56], "scale": [0.3, 1]},
        ]
    },
    "resize": {"ops": [{"op": "resize", "size": [40, 40]}]},
}


def _both(plan, data: bytes, keys: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """(DCT-scaled decode + engine, full decode + engine, the scales used)."""
    headers = [probe_image(data, max_pixels=MAX_PIXELS) for _ in keys]
    planned = plan_decode(plan, headers, seed=1, keys=keys)
    scaled = augment(plan, planned.decode(), seed=1, keys=keys).images
    full = probe_image(data, max_pixels=MAX_PIXELS).decode()
    whole = augment(plan, [full] * len(keys), seed=1, keys=keys).images
    return scaled, whole, planned.scales


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_dct_scaled_decode_is_within_the_bound_of_the_full_decode(recipe: str) -> None:
    plan = compile_plan(parse_recipe(RECIPES[recipe]))
    used = set()
    for data in _photos():
        scaled, whole, scales = _both(plan, data, KEYS)
        used |= set(scales)
        diff = scaled.double() - whole.double()
        assert diff.abs().mean(dim=(1, 2, 3)).max() <= 2.0
        mse = float((diff**2).mean())
        assert mse == 0 or 10 * math.log10(255**2 / mse) >= 38.0
    assert used & {2, 4, 8}, "the recipe never decoded below full scale"


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_jpegs_decode_the_right_region(orientation: int) -> None:
    """A rotated JPEG's samples are drawn for its displayed frame: DCT-scaled decoding
    gives what warping the full, displayed decode gives, within the bound, and a blob
    lands where the returned matrix puts it."""
    plan = compile_plan(parse_recipe(RECIPES["rotate_crop"]))
    data = _jpeg(photo(332, 452).permute(1, 2, 0).numpy(), orientation)
    scaled, whole, scales = _both(plan, data, KEYS)
    assert set(scales) & {2, 4}
    assert (scaled.double() - whole.double()).abs().mean(dim=(1, 2, 3)).max() <= 2.0

    marker = _blob_jpeg(452, 332, orientation)
    displayed = probe_image(marker, max_pixels=MAX_PIXELS).decode()
    where = _centroid(displayed[0])
    headers = [probe_image(marker, max_pixels=MAX_PIXELS) for _ in KEYS]
    planned = plan_decode(plan, headers, seed=1, keys=KEYS)
    result = augment(plan, planned.decode(), seed=1, keys=KEYS)
    expected = geometry.apply_points(result.params["matrix"], np.array([[where]] * len(KEYS)))
    checked = 0
    for i, (x, y) in enumerate(expected[:, 0]):
        if 8 <= x <= 48 and 8 <= y <= 40 and planned.scales[i] > 1:
            got = _centroid(result.images[i, 0])
            assert math.dist(got, (x, y)) < 1.0, (i, got, (x, y))
            checked += 1
    assert checked


@pytest.mark.parametrize("regions", [True, False])
def test_the_budget_counts_the_pixels_decoded_at_the_scale(monkeypatch, regions: bool) -> None:
    """The budget is the scaled images' pixels: exactly what a whole decode holds, and
    at least what a region decode holds (with or without the region decoder)."""
    monkeypatch.setattr(jpeg_region, "AVAILABLE", regions and jpeg_region.AVAILABLE)
    plan = compile_plan(parse_recipe({"ops": [{"op": "resize", "size": [50, 50]}]}))
    data = _jpeg(photo(800, 1000).permute(1, 2, 0).numpy())  # pre-shrink 8
    headers = [probe_image(data, max_pixels=MAX_PIXELS) for _ in range(4)]
    planned = plan_decode(plan, headers, seed=0, keys=range(4))
    held = sum(d.pixels[0].numel() for d in planned.decode())
    assert planned.pixels == sum(h.decoded_pixels(8) for h in headers)
    assert held <= planned.pixels if jpeg_region.AVAILABLE else held == planned.pixels
    assert planned.pixels <= sum(h.pixels for h in headers) // 16


def test_an_encoded_bytes_round_trip_equals_the_service_decode() -> None:
    """``augsvc augment``'s decode (plan_decode) is what the engine sees from the service:
    one function, so equal bytes; here its scales are a function of the key alone."""
    plan = compile_plan(parse_recipe(RECIPES["crop"]))
    data = io.BytesIO(imagegen.photo_jpeg()).getvalue()
    headers = [probe_image(data, max_pixels=MAX_PIXELS) for _ in KEYS]
    together = plan_decode(plan, headers, seed=3, keys=KEYS).scales
    alone = [
        plan_decode(plan, [h], seed=3, keys=[k]).scales[0]
        for h, k in zip(headers, KEYS, strict=True)
    ]
    assert together == alone
