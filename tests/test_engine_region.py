"""Region-first warping against the whole-image path it replaced.

The bound the region path is held to, against ``region_first=False`` (every source
converted and pre-shrunk whole): with bilinear and bicubic interpolation no output value
differs by more than 1 grey level and the mean difference of a sample is under 0.05
(typically under 0.001); with nearest every output pixel comes from the same source
pixel or, at an exact rounding tie, its neighbour. Samples whose region is the whole
image are identical.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc.engine import augment, compile_plan, sample_plan
from augsvc.engine.region import TAPS, plan_regions
from augsvc.maths import geometry
from augsvc.maths.kernels import _torch_block_means, box_shrink, prescale, shrink_factor
from augsvc.recipes import parse_recipe
from tests.photos import photo

MODES = ("bilinear", "bicubic", "nearest")
PADDINGS = (("constant", [0]), ("constant", [200, 100, 50]), ("border", [0]), ("reflection", [0]))


def _replicated_means(x: torch.Tensor, k: int) -> torch.Tensor:
    """avg_pool2d of the image padded to whole k x k blocks by repeating its last row
    and column, the way a JPEG encoder completes its blocks."""
    edges = (0, -x.shape[-1] % k, 0, -x.shape[-2] % k)
    return F.avg_pool2d(F.pad(x.float(), edges, mode="replicate"), k)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 8, 11, 12, 16, 17, 40])
def test_box_shrink_equals_avg_pool2d_of_whole_blocks_to_the_bit(k: int) -> None:
    gen = torch.Generator().manual_seed(k)
    shapes = [(1, 37, 53), (3, 64, 48), (4, 2 * k + 1, 3 * k + 2), (3, 2 * k, k + 1)]
    for c, h, w in [*shapes, (2, 2 * k, 3 * k)]:
        if h < k + 1 or w < k + 1:
            continue
        x = torch.randint(0, 256, (2, c, h, w), dtype=torch.uint8, generator=gen)
        x[0, :, : h // 2] = 255  # the largest sums
        expected = _replicated_means(x, k)
        assert expected.shape[-2:] == (-(-h // k), -(-w // k))
        assert torch.equal(box_shrink(x, k), expected)
        interleaved = x.contiguous(memory_format=torch.channels_last)  # a decoder's HWC
        assert torch.equal(box_shrink(interleaved, k), expected)
        assert torch.equal(box_shrink(x[..., 1:, 1:], k), _replicated_means(x[..., 1:, 1:], k))
        assert torch.equal(box_shrink(x.float(), k), expected)
        if h % k == 0 and w % k == 0:  # a device's kernel, run here on the CPU
            assert torch.equal(_torch_block_means(x, k), expected)


@settings(max_examples=300, deadline=None)
@given(
    sy=st.floats(0.01, 3.0),
    sx=st.floats(0.01, 3.0),
    angle=st.floats(0, 2 * math.pi),
    hw=st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
)
def test_the_pre_shrink_is_a_power_of_two_that_leaves_at_most_2x(sy, sx, angle, hw) -> None:
    """Any scale, anisotropy and rotation: the factor is a power of two, the smallest
    after which the mean shrink is at most 2x, unless capped by the least shrunk axis
    (never enlarged by the warp) or by the image's size."""
    c, s = math.cos(angle), math.sin(angle)
    matrix = np.array([[[sx * c, -sy * s, 0.0], [sx * s, sy * c, 0.0], [0.0, 0.0, 1.0]]])
    k = int(shrink_factor(matrix, hw[0], hw[1])[0])
    assert k >= 1 and k & (k - 1) == 0
    mean, least = 1 / math.sqrt(sx * sy), 1 / max(sx, sy)
    assert k <= max(1.0, least) * (1 + 1e-9) and k <= max(1, min(hw) // 2)
    if k > 1:
        assert mean / (k // 2) > 2 * (1 - 1e-9)  # a smaller power of two would not do
    if 2 * k <= least and 2 * k <= min(hw) // 2:
        assert mean / k <= 2 * (1 + 1e-9)


def test_a_matrix_without_a_finite_scale_is_not_pre_shrunk() -> None:
    """NaN, and a perspective whose horizon crosses the source centre (x = 499.5)."""
    horizon = [[1, 0, 0], [0, 1, 0], [1, 0, -499.5]]
    degenerate = np.array([[[np.nan] * 3] * 3, horizon])
    with np.errstate(all="ignore"):
        assert shrink_factor(degenerate, 1000, 1000).tolist() == [1, 1]


def test_a_shrunk_flat_image_stays_flat_to_its_edges() -> None:
    """A grey image resized by a factor that leaves partial blocks is the same grey
    in every output pixel: the last row and column do not read padding."""
    plan = compile_plan(parse_recipe({"ops": [{"op": "resize", "size": [40, 40]}]}))
    for hw in [(375, 500), (1537, 2047), (333, 97)]:
        grey = torch.full((1, 3, *hw), 200, dtype=torch.uint8)
        for region_first in (True, False):
            out = augment(plan, grey, seed=0, keys=[0], region_first=region_first).images
            assert (out == 200).all(), (hw, region_first)


def _random_recipe(rng: np.random.Generator) -> dict:
    """One to three geometric ops, every kind of matrix: rotations, perspective, shears,
    crops that zoom in, pads and shrinks that reach outside the image."""
    pool = [
        lambda: {"op": "rotate", "degrees": float(rng.uniform(0, 180))},
        lambda: {"op": "perspective", "distortion_scale": float(rng.uniform(0.1, 1)), "p": 0.8},
        lambda: {
            "op": "affine",
            "degrees": float(rng.uniform(0, 45)),
            "translate": [float(rng.uniform(0, 0.4))] * 2,
            "scale": sorted(rng.uniform(0.1, 2.0, 2).tolist()),
            "shear": float(rng.uniform(0, 30)),
        },
        lambda: {"op": "random_resized_crop", "size": [int(rng.integers(8, 300))] * 2},
        lambda: {"op": "crop", "size": [int(rng.integers(5, 400))] * 2, "position": "random"},
        lambda: {"op": "pad", "padding": int(rng.integers(1, 50))},
        lambda: {"op": "hflip"},
        lambda: {"op": "resize", "size": [int(rng.integers(4, 200)), int(rng.integers(4, 200))]},
    ]
    ops = [pool[i]() for i in rng.integers(0, len(pool), int(rng.integers(1, 4)))]
    return {"ops": ops}


def test_region_plan_moves_every_sampled_position_where_the_full_path_reads() -> None:
    """1,000 keys over random recipes, sizes, interpolations and paddings: a source
    position the whole-image path samples for an output pixel is, to 1e-6 px, where
    the region path samples it, and every pixel inside the image that interpolation
    reads there lies inside the region. Maths only: fast."""
    rng = np.random.default_rng(2025)
    checked = 0
    for _ in range(50):
        recipe = _random_recipe(rng)
        mode = str(rng.choice(MODES))
        padding, _ = PADDINGS[int(rng.integers(0, len(PADDINGS)))]
        plan = compile_plan(parse_recipe(recipe))
        keys = rng.integers(0, 2**40, 20)
        hw = np.stack([rng.integers(1, 3000, 20), rng.integers(1, 3000, 20)], 1)
        first = sample_plan(plan, 99, keys, hw).stages[0]
        regions = plan_regions(
            first["matrix"], first["out_hw"], hw, mode=mode, padding_mode=padding, antialias=True
        )
        for i in range(len(keys)):
            checked += 1
            k = int(regions.factors[i])
            top, left, bottom, right = (-(-regions.boxes[i] // k)).tolist()  # edges: ceil
            assert (regions.boxes[i, :2] % k == 0).all()
            pooled = first["matrix"][i] @ prescale(k)
            oh, ow = first["out_hw"][i].tolist()
            grid = np.stack(np.meshgrid(np.linspace(0, ow - 1, 9), np.linspace(0, oh - 1, 9)), -1)
            out = np.concatenate(
                [grid.reshape(-1, 2), rng.uniform(0, 1, (32, 2)) * [ow - 1, oh - 1]]
            )
            full = geometry.apply_points(np.linalg.inv(pooled)[None], out[None])[0]
            part = geometry.apply_points(np.linalg.inv(regions.matrices[i])[None], out[None])[0]
            if not np.isfinite(full).all() or np.abs(full).max() > 1e7:
                continue  # beyond a perspective horizon: the region is the whole image
            np.testing.assert_allclose(part + np.array([left, top]), full, atol=1e-6)
            before, after = TAPS[mode]
            ph, pw = -(-hw[i, 0] // k), -(-hw[i, 1] // k)
            for axis, lo, hi, size in ((0, left, right, pw), (1, top, bottom, ph)):
                taps = np.stack([np.floor(full[:, axis]) - before, np.floor(full[:, axis]) + after])
                inside = taps[:, (taps[0] >= 0) & (taps[1] <= size - 1)]
                assert ((inside >= lo) & (inside < hi)).all(), (recipe, i, axis)
            assert 0 <= top < bottom <= ph and 0 <= left < right <= pw
            assert min(bottom - top, right - left) >= min(2, ph, pw)
    assert checked == 1000


def _stack(images) -> torch.Tensor:
    return images if isinstance(images, torch.Tensor) else torch.stack(images)


GEOMETRIES = {
    "rotate_crop": [
        {"op": "rotate", "degrees": 180},
        {"op": "random_resized_crop", "size": [56, 72], "scale": [0.08, 1]},
    ],
    "perspective_crop": [
        {"op": "perspective", "distortion_scale": 0.9, "p": 1},
        {"op": "crop", "size": [80, 90], "position": "random"},
    ],
    "affine_shrink": [
        {"op": "affine", "degrees": 45, "translate": [0.3, 0.3], "scale": [0.2, 1.5], "shear": 20},
        {"op": "resize", "size": [60, 60]},
    ],
}


@pytest.mark.parametrize("geometry_name", sorted(GEOMETRIES))
def test_region_output_is_within_the_bound_of_the_whole_image_path(geometry_name: str) -> None:
    """Real photos, 8 keys per case, every padding mode and fill, bilinear and bicubic."""
    images = [photo(375, 500), photo(750, 1000), photo(61, 47)]
    for mode, (padding, fill) in itertools.product(("bilinear", "bicubic"), PADDINGS):
        output = {"interpolation": mode, "padding_mode": padding, "fill": fill}
        plan = compile_plan(parse_recipe({"ops": GEOMETRIES[geometry_name], "output": output}))
        for img in images:
            new = _stack(augment(plan, [img] * 8, seed=3).images).int()
            old = _stack(augment(plan, [img] * 8, seed=3, region_first=False).images).int()
            diff = (new - old).abs()
            assert diff.max() <= 1, (mode, padding, fill, img.shape)
            assert diff.float().mean(dim=(1, 2, 3)).max() < 0.05, (mode, padding, fill, img.shape)


@pytest.mark.parametrize("padding", ["constant", "border", "reflection"])
def test_nearest_picks_the_same_source_pixel_or_its_neighbour_at_a_tie(padding: str) -> None:
    """Each pixel of a coordinate image names its source pixel (R = x, G = y, B = 255 in
    the image, 0 in the padding): the two paths agree to one pixel."""
    h, w = 200, 240
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    coords = torch.stack([xx, yy, torch.full_like(xx, 255)]).to(torch.uint8)
    for ops in GEOMETRIES.values():
        output = {"interpolation": "nearest", "padding_mode": padding, "antialias": False}
        plan = compile_plan(parse_recipe({"ops": ops, "output": output}))
        new = augment(plan, [coords] * 16, seed=5).images.int()
        old = augment(plan, [coords] * 16, seed=5, region_first=False).images.int()
        both_inside = (new[:, 2] == 255) & (old[:, 2] == 255)
        step = (new[:, :2] - old[:, :2]).abs().amax(1)
        assert (step[both_inside] <= 1).all()
        assert (step[both_inside] > 0).float().mean() < 0.05
        assert (new[:, 2] != old[:, 2]).float().mean() < 0.01  # ties at the image's edge


def test_samples_whose_region_is_the_whole_image_are_identical() -> None:
    plan = compile_plan(parse_recipe({"ops": [{"op": "rotate", "degrees": 60}]}))
    images = [photo(375, 500), photo(120, 90)] * 4
    new, old = (augment(plan, images, seed=1, region_first=rf).images for rf in (True, False))
    assert all(torch.equal(a, b) for a, b in zip(new, old, strict=True))


def test_a_marker_in_a_large_photo_lands_where_the_whole_image_path_puts_it() -> None:
    """A 6 MP source shrunk with a pre-shrink: the marker's centroid agrees to 1 px."""
    h, w = 2000, 3000
    marker = (1850.0, 810.0)
    yy, xx = torch.meshgrid(torch.arange(-60, 61), torch.arange(-60, 61), indexing="ij")
    blob = 255 * torch.exp(-(xx**2 + yy**2) / (2 * 12.0**2))
    image = torch.zeros((1, h, w), dtype=torch.uint8)
    image[0, 750:871, 1790:1911] = blob.round().to(torch.uint8)
    ops = [{"op": "rotate", "degrees": 20}, {"op": "random_resized_crop", "size": 224}]
    plan = compile_plan(parse_recipe({"ops": ops}))
    keys = [k for k in range(200) if _marker_inside(plan, k, (h, w), marker)][:4]
    assert keys
    oy, ox = torch.meshgrid(torch.arange(224.0), torch.arange(224.0), indexing="ij")
    for key in keys:
        got = [
            augment(plan, [image], seed=0, keys=[key], region_first=rf).images[0, 0].float()
            for rf in (True, False)
        ]
        centroids = [
            (float((g * ox).sum() / g.sum()), float((g * oy).sum() / g.sum())) for g in got
        ]
        assert math.dist(*centroids) < 1.0, (key, centroids)


def _marker_inside(plan, key: int, hw: tuple[int, int], marker: tuple[float, float]) -> bool:
    matrix = sample_plan(plan, 0, np.array([key]), np.array([hw])).record["matrix"]
    x, y = geometry.apply_points(matrix, np.array([[marker]]))[0, 0]
    return 20 <= x <= 204 and 20 <= y <= 204
