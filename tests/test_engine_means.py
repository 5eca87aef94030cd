"""The contrast mean is a per-sample statistic that must not depend on the batch: on a
device it is a fixed-point sum, whose value no reduction order can change; on the CPU it
stays the float mean it always was (the golden bytes pin that)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc.maths.colour import MEAN_BITS, exact_means, sample_means

rows = st.integers(1, 5).flatmap(
    lambda n: st.integers(1, 300).flatmap(
        lambda length: st.tuples(
            st.just((n, 3, length)), st.integers(0, 2**32 - 1), st.sampled_from([1.0, 255.0, 400.0])
        )
    )
)


def _values(shape, seed, spread):
    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.random(shape) * spread - 0.1 * spread).astype(np.float32))


@settings(max_examples=60, deadline=None)
@given(rows)
def test_exact_means_are_the_same_bits_in_any_order_and_any_batch(case):
    shape, seed, spread = case
    x = _values(shape, seed, spread)
    means = exact_means(x)
    order = torch.from_numpy(np.random.default_rng(seed + 1).permutation(shape[-1]))
    assert torch.equal(exact_means(x[..., order]), means)  # any summation order
    for i in range(shape[0]):  # alone, and beside any batch-mates
        assert torch.equal(exact_means(x[i : i + 1]), means[i : i + 1])
    assert torch.equal(exact_means(torch.cat([x, x.flip(0)]))[: shape[0]], means)
    truth = x.double().mean(dim=-1, keepdim=True)
    tolerance = 2.0 ** -(MEAN_BITS + 1) + truth.abs() * 2.0**-23
    assert bool(((means.double() - truth).abs() <= tolerance).all())


def test_cpu_means_are_the_float_means_they_always_were():
    x = _values((4, 3, 1000), 7, 255.0)
    assert torch.equal(sample_means(x), x.mean(dim=2, keepdim=True))
