"""The policies' building blocks, each alone, against torchvision.transforms.v2.functional
with the same parameters: uint8 in, exactly torchvision's bytes for the integer maths
(posterize, solarize, invert, equalize, autocontrast, hue, and shear/translate with
nearest sampling), at most one grey level apart elsewhere. Real photos, grey and RGBA
(alpha passes through; torchvision's kernels that refuse four channels are compared
on the colour channels)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torchvision.transforms import InterpolationMode

from augsvc.engine import augment, compile_plan
from augsvc.recipes import parse_recipe
from tests.photos import photo, photo_batch

Ref = Callable[[torch.Tensor], torch.Tensor]


def run(op: dict, images, seed: int = 0, **output):
    recipe = parse_recipe({"ops": [op], "output": {"channels": "auto", **output}})
    return augment(compile_plan(recipe), images, seed=seed)


def images() -> dict[str, torch.Tensor]:
    rgb = photo(120, 160)
    rgba = torch.cat([photo(90, 70), torch.full((1, 90, 70), 77, dtype=torch.uint8)])
    return {
        "rgb": rgb,
        "rgb_large": photo(375, 500),
        "grey": photo(64, 96)[1:2].contiguous(),
        "rgba": rgba,
    }


def reference(ref: Ref, x: torch.Tensor) -> torch.Tensor:
    """torchvision on the colour channels; alpha kept (its four-channel kernels differ:
    some refuse alpha, posterize and solarize would change it)."""
    if x.shape[0] == 4:
        return torch.cat([ref(x[:3]), x[3:]])
    return ref(x)


# (op as a recipe writes it, torchvision's call, most grey levels apart)
EXACT = 0
CASES: list[tuple[dict, Ref, int]] = [
    ({"op": "posterize", "bits": 3}, lambda x: F.posterize(x, 3), EXACT),
    ({"op": "posterize", "bits": 0}, lambda x: F.posterize(x, 0), EXACT),
    ({"op": "solarize", "threshold": 100}, lambda x: F.solarize(x, 100), EXACT),
    ({"op": "solarize", "threshold": 127.5}, lambda x: F.solarize(x, 127.5), EXACT),
    ({"op": "invert"}, F.invert, EXACT),
    ({"op": "equalize"}, F.equalize, EXACT),
    ({"op": "autocontrast"}, F.autocontrast, EXACT),
    ({"op": "hue", "factor": 0.2}, lambda x: F.adjust_hue(x, 0.2), EXACT),
    ({"op": "hue", "factor": -0.45}, lambda x: F.adjust_hue(x, -0.45), EXACT),
    ({"op": "sharpness", "factor": 0.2}, lambda x: F.adjust_sharpness(x, 0.2), EXACT),
    ({"op": "sharpness", "factor": 1.9}, lambda x: F.adjust_sharpness(x, 1.9), EXACT),
    ({"op": "saturation", "factor": 0.3}, lambda x: F.adjust_saturation(x, 0.3), 1),
    ({"op": "saturation", "factor": 1.8}, lambda x: F.adjust_saturation(x, 1.8), 1),
    ({"op": "brightness", "factor": 1.6}, lambda x: F.adjust_brightness(x, 1.6), 1),
    ({"op": "brightness", "factor": 0.3}, lambda x: F.adjust_brightness(x, 0.3), 1),
    ({"op": "contrast", "factor": 0.4}, lambda x: F.adjust_contrast(x, 0.4), 1),
    ({"op": "contrast", "factor": 1.7}, lambda x: F.adjust_contrast(x, 1.7), 1),
]


def _affine(x, i, **kw):
    base = {"angle": 0.0, "translate": [0, 0], "scale": 1.0, "shear": [0.0, 0.0]}
    return F.affine(x, **{**base, **kw}, interpolation=i)


GEOMETRIC: list[tuple[dict, Callable]] = [
    # The policies' ShearX: about the top-left corner.
    (
        {"op": "shear", "x": [17, 17], "center": [0, 0]},
        lambda x, i: _affine(x, i, shear=[17.0, 0.0], center=[0, 0]),
    ),
    ({"op": "shear", "y": [-12, -12]}, lambda x, i: _affine(x, i, shear=[0.0, -12.0])),
    (
        {"op": "shear", "x": [5, 5], "y": [9, 9], "center": [30, 20]},
        lambda x, i: _affine(x, i, shear=[5.0, 9.0], center=[30, 20]),
    ),
    (
        {"op": "translate", "x": [13, 13], "y": [-7, -7]},
        lambda x, i: _affine(x, i, translate=[13, -7]),
    ),
    (
        {"op": "translate", "x": [0.2, 0.2], "units": "fraction"},
        lambda x, i: _affine(x, i, translate=[0.2 * x.shape[-1], 0]),
    ),
]


@pytest.mark.parametrize("case", range(len(CASES)), ids=[str(c[0]) for c in CASES])
@pytest.mark.parametrize("kind", ["rgb", "rgb_large", "grey", "rgba"])
def test_tone_and_colour_ops_match_torchvision(case: int, kind: str) -> None:
    op, ref, levels = CASES[case]
    x = images()[kind]
    ours = run(op, [x]).images[0]
    theirs = reference(ref, x)
    diff = (ours.int() - theirs.int()).abs()
    assert diff.max() <= levels, (op, kind, int(diff.max()))
    if levels:  # off by one only where the two round differently
        assert (diff > 0).double().mean() < 0.85


@pytest.mark.parametrize("case", range(len(GEOMETRIC)), ids=[str(c[0]) for c in GEOMETRIC])
@pytest.mark.parametrize("kind", ["rgb", "grey", "rgba"])
def test_shear_and_translate_match_torchvision_affine(case: int, kind: str) -> None:
    """Nearest: the same pixels; bilinear: within one grey level."""
    op, ref = GEOMETRIC[case]
    x = images()[kind]
    for mode, interp, levels in (
        ("nearest", InterpolationMode.NEAREST, 0),
        ("bilinear", InterpolationMode.BILINEAR, 1),
    ):
        ours = run(op, [x], interpolation=mode).images[0]
        diff = (ours.int() - ref(x, interp).int()).abs()
        assert diff.max() <= levels, (op, kind, mode, int(diff.max()))


def test_ranges_draw_per_sample_and_each_sample_matches_torchvision() -> None:
    """A [min, max] range is drawn per sample (bits as whole numbers); each sample is
    torchvision's op with the value it drew, and a sample the coin skipped is its input."""
    batch = photo_batch(16)
    ops = [
        ({"op": "posterize", "bits": [2, 5], "p": 0.6}, "bits", lambda x, v: F.posterize(x, v)),
        ({"op": "solarize", "threshold": [60, 200], "p": 0.6}, "threshold", F.solarize),
        ({"op": "sharpness", "factor": [0, 2], "p": 0.6}, "factor", F.adjust_sharpness),
        ({"op": "hue", "factor": 0.5, "p": 0.6}, "factor", F.adjust_hue),
    ]
    for op, name, ref in ops:
        result = run(op, batch, seed=5)
        applied = result.params["ops.0.applied"]
        values = result.params[f"ops.0.{name}"]
        assert 0 < applied.sum() < len(batch)
        if name == "bits":
            assert set(values[applied].tolist()) <= {2.0, 3.0, 4.0, 5.0}
            assert len(set(values[applied].tolist())) > 1
        for i, x in enumerate(batch):
            got = result.images[i].int()
            if not applied[i]:
                assert torch.equal(got, x.int())
                continue
            v = int(values[i]) if name == "bits" else float(values[i])
            assert (got - ref(x, v).int()).abs().max() <= (1 if name == "factor" else 0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bits=st.integers(0, 8),
    threshold=st.floats(0, 255),
    top=st.integers(0, 200),
    left=st.integers(0, 300),
    size=st.tuples(st.integers(1, 90), st.integers(1, 90)),
    channels=st.sampled_from([1, 3, 4]),
)
def test_integer_ops_are_exact_on_any_crop(bits, threshold, top, left, size, channels) -> None:
    """Generated crops (down to one pixel) and channel counts: the integer ops give
    torchvision's bytes whatever the image."""
    x = photo()[:, top : top + size[0], left : left + size[1]]
    if channels == 1:
        x = x[:1]
    elif channels == 4:
        x = torch.cat([x, torch.full_like(x[:1], 200)])
    x = x.contiguous()
    for op, ref in (
        ({"op": "posterize", "bits": bits}, lambda im: F.posterize(im, bits)),
        ({"op": "solarize", "threshold": threshold}, lambda im: F.solarize(im, threshold)),
        ({"op": "equalize"}, F.equalize),
        ({"op": "autocontrast"}, F.autocontrast),
        ({"op": "invert"}, F.invert),
    ):
        assert torch.equal(run(op, [x]).images[0], reference(ref, x)), op


def test_shear_about_the_corner_moves_the_corner_nowhere() -> None:
    """The matrix the engine returns is the shear torchvision applies (about [0, 0]):
    the top-left corner stays, the bottom-left moves by height * tan(x)."""
    result = run({"op": "shear", "x": [20, 20], "center": [0, 0]}, [photo(50, 60)])
    m = result.params["matrix"][0]
    corner = m @ np.array([-0.5, -0.5, 1.0])
    assert np.allclose(corner[:2], [-0.5, -0.5])
    bottom = m @ np.array([-0.5, 49.5, 1.0])
    assert np.isclose(bottom[0] + 0.5, -50 * np.tan(np.deg2rad(20)))
