"""The device's one-pass first warp over regions of different sizes: the per-sample
warp's values to float rounding (bilinear: at most one grey level once rounded;
nearest: the same source pixel except at a rounding tie), zeros and border padding;
and a sample's values are the same bits alone or among any batch-mates. Run here on the
CPU, where the gathers are the same maths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from augsvc.maths import kernels
from augsvc.maths.varlen_warp import supported, warp_varlen
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


def _rounding_ties(matrix: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """(H,W): output pixels whose source position lies within 1e-3 px of a rounding tie
    on either axis, where nearest's choice rests on the last bits of float32 maths."""
    oh, ow = out_hw
    ys, xs = np.mgrid[0:oh, 0:ow]
    points = np.stack([xs, ys, np.ones_like(xs)], -1).reshape(-1, 3).astype(np.float64)
    src = points @ np.linalg.inv(matrix).T
    src = src[:, :2] / src[:, 2:]
    return (np.abs(src - np.floor(src) - 0.5) < 1e-3).any(axis=1).reshape(oh, ow)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 6),
    st.sampled_from(["bilinear", "nearest"]),
    st.sampled_from(["zeros", "border"]),
)
@example(197, 6, "nearest", "zeros")  # a tie: one pixel takes its neighbour's value
@example(1922, 3, "nearest", "zeros")  # a tie at the edge: the first pixel or padding
def test_one_pass_matches_the_per_sample_warp(seed, n, mode, padding):
    """Bilinear within one grey level; nearest the same pixel, except at a rounding tie,
    where either neighbour is the nearest."""
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
        if mode == "nearest":  # a tie may take the padding beside the edge: any value
            apart = (diff[0] > 1).any(0).numpy()
            assert not (apart & ~_rounding_ties(matrices[i], out_hw)).any()
        else:
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
    assert supported("bilinear", kernels.padding("constant", (0,)))
    assert not supported("bilinear", kernels.padding("constant", (255, 0, 0)))
    assert not supported("bicubic", kernels.padding("border", (0,)))
    assert not supported("bilinear", kernels.padding("reflection", (0,)))


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_rgba_sources(channels):
    rng = np.random.default_rng(channels)
    sources = [s[:, :1].expand(-1, channels, -1, -1).contiguous() for s in _sources(rng, 3)]
    matrices = np.stack([_matrix(rng, s.shape[-2:], (12, 10)) for s in sources])
    out = warp_varlen(sources, matrices, (12, 10), mode="bilinear", padding_mode="border")
    assert out.shape == (3, channels, 12, 10)
    assert torch.equal(out[:, :1].expand_as(out), out)  # each channel sampled alike
