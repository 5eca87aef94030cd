"""Each op does what Kornia's own op does with the same parameters; the fused chain
moves pixels where its composed matrix says; flips are exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from kornia.geometry.transform import (
    crop_by_indices,
    get_affine_matrix2d,
    get_perspective_transform,
    resize,
    rotate,
    warp_affine,
    warp_perspective,
)

from augsvc.engine import augment, compile_plan
from augsvc.maths import geometry
from augsvc.recipes import parse_recipe
from tests.photos import photo, photo_batch

MARGIN = 12  # compare away from borders, where padding conventions legitimately differ


def run(ops, images, seed=0, **output):
    recipe = parse_recipe({"ops": ops, "output": output} if output else {"ops": ops})
    return augment(compile_plan(recipe), images, seed=seed)


def assert_close_to(ours: torch.Tensor, reference: torch.Tensor):
    """Mean absolute error under 1/255 of the range, away from the borders."""
    inner = (..., slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    err = (ours.float()[inner] - reference.float().clamp(0, 255)[inner]).abs().mean()
    assert err < 1.0, f"mean abs error {err:.3f} grey levels"


def test_rotate_matches_kornia_rotate():
    images = photo_batch(6)
    result = run([{"op": "rotate", "degrees": 40}], images)
    angle = torch.as_tensor(result.params["ops.0.angle"], dtype=torch.float32)
    assert angle.abs().max() > 5
    assert_close_to(result.images, rotate(images.float(), angle))


def test_affine_matches_kornia_affine_matrix():
    images = photo_batch(6)
    op = {"op": "affine", "degrees": 20, "translate": [0.1, 0.2], "scale": [0.7, 1.3], "shear": 10}
    result = run([op], images)
    p = {k.split(".")[-1]: torch.as_tensor(v) for k, v in result.params.items() if "ops.0" in k}
    n, _, h, w = images.shape
    center = torch.tensor([[(w - 1) / 2, (h - 1) / 2]], dtype=torch.float64).repeat(n, 1)
    matrix = get_affine_matrix2d(
        torch.stack([p["tx"], p["ty"]], 1),
        center,
        torch.stack([p["scale"], p["scale"]], 1),
        p["angle"],
        torch.deg2rad(p["shear_x"]),
        torch.deg2rad(p["shear_y"]),
    )
    assert np.allclose(matrix.numpy(), result.params["matrix"], atol=1e-9)
    reference = warp_affine(images.float(), matrix[:, :2].float(), (h, w), align_corners=True)
    assert_close_to(result.images, reference)


def test_random_resized_crop_matches_kornia_crop_then_resize():
    images = photo_batch(6, 150, 200)
    result = run([{"op": "random_resized_crop", "size": [96, 128], "scale": [0.5, 1.0]}], images)
    p = {k.split(".")[-1]: v.astype(int) for k, v in result.params.items() if "ops.0" in k}
    for i in range(len(images)):
        t, le, h, w = p["top"][i], p["left"][i], p["height"][i], p["width"][i]
        box = torch.tensor([[[le, t], [le + w - 1, t], [le + w - 1, t + h - 1], [le, t + h - 1]]])
        crop = crop_by_indices(images[i : i + 1].float(), box.float())
        reference = resize(crop, (96, 128), align_corners=False)
        assert_close_to(result.images[i : i + 1], reference)


def test_center_crop_and_pad_are_exact_translations():
    image = photo(100, 120)[None]
    result = run([{"op": "pad", "padding": [3, 5, 7, 9]}, {"op": "crop", "size": [80, 90]}], image)
    padded = F.pad(image, (3, 7, 5, 9))
    top, left = round((114 - 80) / 2), round((130 - 90) / 2)
    assert torch.equal(result.images, padded[..., top : top + 80, left : left + 90])


def test_resize_matches_kornia_resize():
    images = photo_batch(3, 120, 160)
    result = run([{"op": "resize", "size": [90, 110]}], images)
    assert_close_to(result.images, resize(images.float(), (90, 110), align_corners=False))
    shorter = run([{"op": "resize", "size": 60}], images)
    assert shorter.images.shape[-2:] == (60, 80)  # shorter side, aspect kept


def test_perspective_matches_kornia_warp_perspective():
    images = photo_batch(4)
    result = run([{"op": "perspective", "distortion_scale": 0.5, "p": 1.0}], images)
    n, _, h, w = images.shape
    start = torch.as_tensor(geometry.corners(np.full(n, float(h)), np.full(n, float(w))))
    end = start + torch.as_tensor(result.params["ops.0.shift"])
    matrix = get_perspective_transform(start, end).float()
    assert_close_to(result.images, warp_perspective(images.float(), matrix, (h, w)))


def test_flips_are_exact():
    images = photo_batch(5)
    assert torch.equal(run([{"op": "hflip", "p": 1.0}], images).images, images.flip(-1))
    assert torch.equal(run([{"op": "vflip", "p": 1.0}], images).images, images.flip(-2))
    both = run([{"op": "hflip", "p": 1.0}, {"op": "vflip", "p": 1.0}], images).images
    assert torch.equal(both, images.flip(-1, -2))
    half = run([{"op": "hflip", "p": 0.5}], photo_batch(40))
    flipped = half.params["ops.0.applied"]
    assert 0 < flipped.sum() < 40
    for i, on in enumerate(flipped):
        src = photo_batch(40)[i]
        assert torch.equal(half.images[i], src.flip(-1) if on else src)


def test_fused_chain_moves_a_marker_where_the_matrix_says():
    h, w = 200, 240
    ops = [
        {"op": "rotate", "degrees": 25},
        {"op": "affine", "translate": [0.05, 0.05], "scale": [0.9, 1.1], "shear": 5},
        {"op": "random_resized_crop", "size": [150, 150], "scale": [0.7, 0.9]},
        {"op": "hflip", "p": 0.5},
    ]
    marker = (130.0, 90.0)  # x, y near the centre so it survives the crop
    image = torch.zeros(1, 1, h, w)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    image[0, 0] = 255 * torch.exp(-((xx - marker[0]) ** 2 + (yy - marker[1]) ** 2) / (2 * 2.0**2))
    images = image.round().to(torch.uint8).repeat(8, 1, 1, 1)
    result = run(ops, images, seed=11)
    expected = geometry.apply_points(result.params["matrix"], np.array([[marker]] * 8))[:, 0]
    for i in range(8):
        out = result.images[i, 0].float()
        weights = out / out.sum()
        centroid = (
            float((weights * xx[:150, :150]).sum()),
            float((weights * yy[:150, :150]).sum()),
        )
        assert math.dist(centroid, expected[i]) < 1.0, (i, centroid, expected[i])


def test_one_warp_is_sharper_than_a_chain_of_warps():
    """Fusing avoids the blur of resampling once per op."""
    images = photo_batch(4)
    ops = [{"op": "rotate", "degrees": [10, 10]}, {"op": "rotate", "degrees": [-10, -10]}]
    fused = run(ops, images).images.float()
    inner = (..., slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    once = rotate(rotate(images.float(), torch.full((4,), 10.0)), torch.full((4,), -10.0))
    fused_err = (fused[inner] - images.float()[inner]).abs().mean()
    chained_err = (once[inner] - images.float()[inner]).abs().mean()
    assert fused_err < 0.6 < chained_err


def test_strong_shrink_is_antialiased():
    """A 1-pixel checkerboard shrunk 8.5x is mid-grey, not moire, with antialias."""
    board = ((torch.arange(256)[:, None] + torch.arange(256)[None]) % 2 * 255).to(torch.uint8)
    images = board.expand(2, 3, 256, 256).contiguous()
    smooth = run([{"op": "resize", "size": [30, 30]}], images).images.float()
    assert (smooth - 127.5).abs().max() < 10
    aliased = run([{"op": "resize", "size": [30, 30]}], images, antialias=False).images.float()
    assert (aliased - 127.5).abs().max() > 60


def test_shrinks_stay_near_torchvision_antialiased_resize():
    """Square crops of the photo, 90-375 px, resized to 32 and 64 (shrinks of 1.4-11.7x):
    the pre-shrink plus one bilinear warp against torchvision's antialiased resize,
    edges included. A factor rounded down (warps left shrinking 2-4x) and a partial
    edge block dropped were 2.99 grey levels off on average, 4.87 at worst."""
    import torchvision.transforms.v2.functional as TF

    big = photo()
    errors = []
    for side in range(90, 376, 15):
        src = big[:, :side, 500 - side :].contiguous()
        for size in (32, 64):
            ours = run([{"op": "resize", "size": [size, size]}], src[None]).images[0]
            reference = TF.resize(src, [size, size], antialias=True)
            errors.append((ours.float() - reference.float()).abs().mean().item())
    assert np.mean(errors) < 1.6 and max(errors) < 3.0, (np.mean(errors), max(errors))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_colour_ops_keep_shape_and_alpha(channels):
    images = photo_batch(4)
    if channels == 1:
        images = images[:, :1].contiguous()
    if channels == 4:
        images = torch.cat([images, torch.full_like(images[:, :1], 77)], 1)
    ops = [
        {"op": "color_jitter", "brightness": 0.5, "contrast": 0.5, "saturation": 0.5, "hue": 0.2}
    ]
    out = run(ops, images, channels="auto").images  # each keeps its own count
    assert out.shape == images.shape
    if channels == 4:
        assert (out[:, 3] == 77).all()


def test_broadcast_grid_equals_torch_affine_grid():
    from augsvc.maths.kernels import affine_grid

    theta = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(0))
    expected = F.affine_grid(theta, [5, 3, 17, 23], align_corners=True)
    assert torch.allclose(affine_grid(theta, (17, 23)), expected, atol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (1, 40), (30, 1)])
def test_one_pixel_high_or_wide_outputs_match_kornia_warp_affine(size):
    """Kornia puts the lone pixel of a one-pixel axis at the normalised centre; the
    broadcast grid must too (it once sampled at -1 and returned zeros)."""
    images = photo_batch(3, 60, 80)
    result = run([{"op": "rotate", "degrees": 20}], images, size=list(size), antialias=False)
    matrix = torch.as_tensor(result.params["matrix"][:, :2], dtype=torch.float32)
    reference = warp_affine(images.float(), matrix, size, align_corners=True)
    assert (result.images.float() - reference.clamp(0, 255)).abs().max() <= 1


def test_blur_of_images_smaller_than_the_kernel():
    """A kernel longer than reflection can pad is cut to 2 * size - 1 taps: a single
    pixel is unchanged, a one-pixel row is blurred along its length only."""
    from kornia.filters import gaussian_blur2d

    pixel = torch.tensor([[[77]], [[10]], [[200]]], dtype=torch.uint8)
    op = {"op": "gaussian_blur", "kernel_size": 5, "sigma": [1.5, 1.5], "p": 1.0}
    assert torch.equal(run([op], [pixel]).images[0], pixel)
    row = photo(1, 50)
    sigma = torch.tensor([[1.5, 1.5]])
    reference = gaussian_blur2d(row[None].float(), (1, 5), sigma, border_type="reflect")
    assert torch.equal(run([op], [row]).images[0], reference[0].round().to(torch.uint8))
