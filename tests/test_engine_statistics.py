"""Over 10,000 keys the drawn parameters follow their declared distributions."""

from __future__ import annotations

import numpy as np
import pytest

from augsvc.engine import compile_plan, sample_plan
from augsvc.maths.rng import sample_states, stream_base, uniform01
from augsvc.recipes import parse_recipe

N = 10_000
KEYS = np.arange(N, dtype=np.int64)


def draw(ops, hw=(375, 500), seed=123):
    plan = compile_plan(parse_recipe({"ops": ops}))
    return sample_plan(plan, seed, KEYS, np.tile(np.array(hw), (N, 1))).record


def ks_uniform(values, lo, hi):
    """Kolmogorov-Smirnov distance to U(lo, hi)."""
    x = np.sort((values - lo) / (hi - lo))
    ecdf = np.arange(1, len(x) + 1) / len(x)
    return max(np.abs(ecdf - x).max(), np.abs(ecdf - 1 / len(x) - x).max())


# 1.63 / sqrt(n) is the 1% critical value; the draws are fixed, so this never flakes.
KS_LIMIT = 1.63 / np.sqrt(N)


def assert_rate(flags, p):
    sigma = np.sqrt(p * (1 - p) / len(flags))
    assert abs(flags.mean() - p) < 4 * sigma, (flags.mean(), p)


def test_raw_draws_are_uniform_and_independent():
    states = sample_states(stream_base("sha256:x", 1), KEYS)
    a, b = uniform01(states, 0, 1), uniform01(states, 0, 2)
    assert ks_uniform(a, 0, 1) < KS_LIMIT
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(N)
    neighbours = uniform01(sample_states(stream_base("sha256:x", 1), KEYS + 1), 0, 1)
    assert abs(np.corrcoef(a, neighbours)[0, 1]) < 4 / np.sqrt(N)


def test_rotation_angle_uniform_over_declared_range():
    angle = draw([{"op": "rotate", "degrees": 30}])["ops.0.angle"]
    assert angle.min() >= -30 and angle.max() <= 30
    assert ks_uniform(angle, -30, 30) < KS_LIMIT


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_flip_rate_matches_p(p):
    assert_rate(draw([{"op": "hflip", "p": p}])["ops.0.applied"], p)


def test_probability_gates_every_op_independently():
    rec = draw([{"op": "rotate", "degrees": 10, "p": 0.3}, {"op": "grayscale", "p": 0.2}])
    assert_rate(rec["ops.0.applied"], 0.3)
    assert_rate(rec["ops.1.applied"], 0.2)
    assert (rec["ops.0.angle"][~rec["ops.0.applied"]] == 0).all()
    both = rec["ops.0.applied"] & rec["ops.1.applied"]
    assert_rate(both, 0.06)


def ks_two_sample(a, b):
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return np.abs(cdf_a - cdf_b).max()


def test_random_resized_crop_follows_torchvision_sampler():
    """Same box distribution as torchvision's RandomResizedCrop (rejection included)."""
    import torch
    from torchvision.transforms import RandomResizedCrop

    rec = draw([{"op": "random_resized_crop", "size": 224, "scale": [0.5, 1.0]}])
    h, w = rec["ops.0.height"], rec["ops.0.width"]
    top, left = rec["ops.0.top"], rec["ops.0.left"]
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 375).all() and (left + w <= 500).all()
    torch.manual_seed(0)
    image = torch.empty(3, 375, 500)
    ref = np.array(
        [RandomResizedCrop.get_params(image, [0.5, 1.0], [3 / 4, 4 / 3]) for _ in range(N)]
    )
    limit = 1.63 * np.sqrt(2 / N)
    assert ks_two_sample(h * w, ref[:, 2] * ref[:, 3]) < limit
    assert ks_two_sample(np.log(w / h), np.log(ref[:, 3] / ref[:, 2])) < limit
    assert ks_two_sample(left, ref[:, 1]) < limit


def test_random_resized_crop_ratio_log_uniform_when_every_box_fits():
    rec = draw([{"op": "random_resized_crop", "size": 64, "scale": [0.05, 0.2]}])
    h, w = rec["ops.0.height"], rec["ops.0.width"]
    assert ks_uniform(np.log(w / h), np.log(3 / 4), np.log(4 / 3)) < 0.03  # w, h are rounded
    assert ks_uniform(h * w / (375 * 500), 0.05, 0.2) < 0.03


def test_affine_parameters_cover_their_ranges():
    rec = draw(
        [{"op": "affine", "degrees": 15, "translate": [0.1, 0.2], "scale": [0.8, 1.2], "shear": 8}]
    )
    assert ks_uniform(rec["ops.0.angle"], -15, 15) < KS_LIMIT
    assert ks_uniform(rec["ops.0.tx"], -50, 50) < KS_LIMIT  # 0.1 * width 500
    assert ks_uniform(rec["ops.0.ty"], -75, 75) < KS_LIMIT  # 0.2 * height 375
    assert ks_uniform(rec["ops.0.scale"], 0.8, 1.2) < KS_LIMIT
    assert ks_uniform(rec["ops.0.shear_x"], -8, 8) < KS_LIMIT


def test_colour_factors_uniform():
    rec = draw([{"op": "color_jitter", "brightness": 0.4, "contrast": [0.5, 2], "hue": 0.1}])
    assert ks_uniform(rec["ops.0.brightness"], 0.6, 1.4) < KS_LIMIT
    assert ks_uniform(rec["ops.0.contrast"], 0.5, 2.0) < KS_LIMIT
    assert ks_uniform(rec["ops.0.hue"], -0.1, 0.1) < KS_LIMIT
    assert (rec["ops.0.saturation"] == 1.0).all()


def test_perspective_corner_shifts_within_bound():
    rec = draw([{"op": "perspective", "distortion_scale": 0.4, "p": 1.0}])
    shift = rec["ops.0.shift"]
    bx, by = 0.4 * 250, 0.4 * 187
    assert np.abs(shift[..., 0]).max() <= bx and np.abs(shift[..., 1]).max() <= by
    assert ks_uniform(np.abs(shift[:, 0, 0]), 0, bx) < KS_LIMIT


def test_blur_sigma_and_erasing_boxes():
    rec = draw(
        [
            {"op": "gaussian_blur", "kernel_size": 5, "sigma": [0.5, 1.5], "p": 1.0},
            {"op": "random_erasing", "scale": [0.02, 0.2], "p": 0.5},
        ]
    )
    assert ks_uniform(rec["ops.0.sigma"], 0.5, 1.5) < KS_LIMIT
    on = rec["ops.1.applied"]
    assert_rate(on, 0.5)
    area = rec["ops.1.height"][on] * rec["ops.1.width"][on] / (375 * 500)
    assert area.min() > 0.015 and area.max() < 0.21


def test_random_crop_position_uniform():
    rec = draw([{"op": "crop", "size": [100, 100], "position": "random"}])
    assert ks_uniform(rec["ops.0.left"], 0, 401) < 0.02
    assert rec["ops.0.left"].max() == 400 and rec["ops.0.top"].max() == 275
