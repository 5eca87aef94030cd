"""One copy each way: the packing behind a device batch's single upload round-trips
every tensor and parameter exactly, and on the CPU nothing is copied or changed."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc.maths.transfer import (
    pack,
    pack_params,
    to_host,
    unpack_params,
    upload_packed,
    upload_params,
)

shapes = st.lists(
    st.tuples(st.sampled_from([1, 3, 4]), st.integers(1, 9), st.integers(1, 9)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(0, 2**32 - 1))
def test_packed_regions_come_back_as_the_same_pixels(sizes, seed):
    rng = np.random.default_rng(seed)
    whole = torch.from_numpy(rng.integers(0, 256, (4, 20, 20), dtype=np.uint8))
    crops = [whole[:c, 1 : 1 + h, 2 : 2 + w][None] for c, h, w in sizes]  # strided views
    flat, starts = pack(crops)
    assert flat.is_contiguous() and flat.numel() == sum(t.numel() for t in crops)
    for t, start in zip(crops, starts, strict=True):
        assert torch.equal(flat[start : start + t.numel()].view(t.shape), t)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_packed_parameters_come_back_as_their_float32_values(n, seed):
    rng = np.random.default_rng(seed)
    arrays = {"a": rng.normal(size=(n, 3, 3)), "s": rng.random(n), "t": rng.normal(size=(n, 2, 3))}
    table = pack_params(arrays)
    assert table.dtype == np.float32 and table.shape == (n, 9 + 1 + 6)
    back = unpack_params(torch.from_numpy(table), arrays)
    for name, values in arrays.items():
        assert torch.equal(back[name], torch.as_tensor(values, dtype=torch.float32))


def test_on_the_cpu_nothing_is_copied_or_changed():
    cpu = torch.device("cpu")
    crops = [torch.zeros(1, 3, 4, 5, dtype=torch.uint8), torch.ones(1, 1, 2, 2, dtype=torch.uint8)]
    assert all(a is b for a, b in zip(upload_packed(crops, cpu), crops, strict=True))
    batch = torch.arange(24, dtype=torch.uint8).view(2, 3, 2, 2)
    assert all(torch.equal(a, b) for a, b in zip(to_host(batch), batch.unbind(0), strict=True))
    assert to_host(crops) == crops
    a = np.random.default_rng(0).normal(size=(2, 3, 3))
    assert torch.equal(upload_params({"a": a}, cpu)["a"], torch.as_tensor(a, dtype=torch.float32))
