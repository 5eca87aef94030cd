"""On CUDA a group is cut into chunks of bounded output pixels, so device memory is
bounded whatever the pixel budget admitted; on the CPU the chunks are what they were
(four samples). The cut keeps every row once, in order."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc.maths.device import DEVICE_CHUNK_PIXELS, execution, split_rows


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 5000), min_size=1, max_size=60),
    st.integers(1, 8),
    st.one_of(st.none(), st.integers(1, 20000)),
)
def test_chunks_keep_every_row_in_order_within_both_limits(pixels, step, max_pixels):
    rows = [3 * i + 1 for i in range(len(pixels))]
    chunks = split_rows(rows, np.array(pixels), step, max_pixels)
    assert [r for chunk in chunks for r in chunk] == rows
    px = dict(zip(rows, pixels, strict=True))
    for i, chunk in enumerate(chunks):
        assert 1 <= len(chunk) <= step
        total = sum(px[r] for r in chunk)
        if max_pixels is not None and len(chunk) > 1:
            assert total <= max_pixels
        if i + 1 < len(chunks) and len(chunk) < step:  # cut only because the next row overflows
            assert max_pixels is not None and total + px[chunks[i + 1][0]] > max_pixels


def test_the_cpu_keeps_its_chunks_of_four_and_cuda_is_bounded():
    assert execution(torch.device("cpu")).split(list(range(10)), np.ones(10)) == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
    ]
    assert execution(torch.device("cuda")).chunk_pixels == DEVICE_CHUNK_PIXELS
    big = 224 * 224
    assert len(split_rows(list(range(256)), np.full(256, big), 1 << 30, DEVICE_CHUNK_PIXELS)) == 1
