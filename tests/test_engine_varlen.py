"""The device's one-pass first warp over regions of different sizes: the per-sample
warp's values to float rounding (at most one grey level once rounded), for bilinear and
nearest, zeros and border padding; and a sample's values are the same bits alone or
among any batch-mates. Run here on the CPU, where the gathers are the same maths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc.engine import kernels
from augsvc.engine.varlen_warp import supported, warp_varlen
from tests.photos import photo


def _matrix(rng, src_hw, out_hw):
    """Source pixel -> output pixel: rotate and scale about the centres, shift a little."""
    angle, scale = rng.uniform(-0.6, 0.6), rng.uniform(0.5, 1.6)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    sc = (np.array(src_hw[::-1]) - 1) / 2
    oc = (np.array(out_hw[::-1]) - 1) / 2 + rng.uniform(-5, 5, 2)
    linear = np.array([[cos, -sin], [sin, cos]])
    m = np.eye(3)
    m[:2, :2] = linear
    m[:2, 2] = oc - linear @ sc
    return m


def _sources(rng, n):
    big = photo(375, 500)
    out = []
    for _ in range(n):
        h, w = int(rng.integers(8, 120)), int(rng.integers(8, 120))
        top, left = int(rng.integers(0, 375 - h)), int(rng.integers(0, 500 - w))
        out.append(big[None, :, top : top + h, left : left + w])
    return out


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 6),
    st.sampled_from(["bilinear", "nearest"]),
    st.sampled_from(["zeros", "border"]),
)
def test_one_pass_matches_the_per_sample_warp(seed, n, mode, padding):
    rng = np.random.default_rng(seed)
    out_hw = (int(rng.integers(4, 40)), int(rng.integers(4, 40)))
    sources = _sources(rng, n)
    matrices = np.stack([_matrix(rng, s.shape[-2:], out_hw) for s in sources])
    together = warp_varlen(sources, matrices, out_hw, mode=mode, padding_mode=padding)
    assert together.shape == (n, 3, *out_hw) and together.dtype == torch.float32
    for i, src in enumerate(sources):
        alone = kernels.warp_source(src, 1, matrices[i : i + 1], out_hw, mode=mode,
                                    padding_mode=padding, fill=(0,))  # fmt: skip
        got, want = kernels.to_uint8(together[i : i + 1].clone()), kernels.to_uint8(alone)
        diff = (got.int() - want.int()).abs()
        assert int(diff.max()) <= 1 and float(diff.float().mean()) < 0.05


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["bilinear", "nearest"]))
def test_a_sample_is_the_same_bits_alone_and_in_any_batch(seed, mode):
    rng = np.random.default_rng(seed)
    out_hw = (17, 23)
    sources = _sources(rng, 4)
    matrices = np.stack([_matrix(rng, s.shape[-2:], out_hw) for s in sources])
    whole = warp_varlen(sources, matrices, out_hw, mode=mode, padding_mode="zeros")
    for i in range(4):
        alone = warp_varlen([sources[i]], matrices[i : i + 1], out_hw, mode=mode,
                            padding_mode="zeros")  # fmt: skip
        assert torch.equal(alone[0], whole[i])
    flipped = warp_varlen(sources[::-1], matrices[::-1], out_hw, mode=mode, padding_mode="zeros")
    assert torch.equal(flipped.flip(0), whole)


def test_float_sources_and_what_it_does_not_do():
    rng = np.random.default_rng(3)
    sources = [s.float() / 2 for s in _sources(rng, 2)]
    matrices = np.stack([_matrix(rng, s.shape[-2:], (9, 9)) for s in sources])
    out = warp_varlen(sources, matrices, (9, 9), mode="bilinear", padding_mode="zeros")
    assert float(out.max()) <= 127.5 + 1e-3
    assert supported("bilinear", "constant", (0,), True)
    assert not supported("bilinear", "constant", (255, 0, 0), True)
    assert not supported("bicubic", "zeros", (0,), True)
    assert not supported("bilinear", "reflection", (0,), True)
    assert not supported("bilinear", "zeros", (0,), False)


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_rgba_sources(channels):
    rng = np.random.default_rng(channels)
    sources = [s[:, :1].expand(-1, channels, -1, -1).contiguous() for s in _sources(rng, 3)]
    matrices = np.stack([_matrix(rng, s.shape[-2:], (12, 10)) for s in sources])
    out = warp_varlen(sources, matrices, (12, 10), mode="bilinear", padding_mode="border")
    assert out.shape == (3, channels, 12, 10)
    assert torch.equal(out[:, :1].expand_as(out), out)  # each channel sampled alike
