"""Draw slots: a layout accepts exactly the blocks that are disjoint and within an op's
slots, and every layout the ops build (AugMix's chains, a policy's positions) holds at
the extremes their fields allow."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc.maths.rng import uniform01
from augsvc.ops._policy import position_slots
from augsvc.ops._slots import SLOTS_PER_OP, SlotLayout
from augsvc.ops.augmix import _slots


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, SLOTS_PER_OP + 5), st.integers(0, 300)), max_size=12))
def test_a_layout_takes_a_block_exactly_when_it_is_free_and_in_range(blocks):
    layout = SlotLayout()
    given_out: list[int] = []
    used = np.zeros(SLOTS_PER_OP + 400, dtype=bool)
    for n, (start, size) in enumerate(blocks):
        fits = size >= 1 and start >= 0 and start + size <= SLOTS_PER_OP
        free = fits and not used[start : start + size].any()
        if free:
            got = layout.take(f"b{n}", start, size)
            assert list(got) == list(range(start, start + size))
            given_out.extend(got)
            used[start : start + size] = True
        else:
            with pytest.raises(ValueError, match=r"overlap|within"):
                layout.take(f"b{n}", start, size)
    assert len(given_out) == len(set(given_out)) == int(used.sum())


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 16), st.integers(1, 10))
def test_augmix_slots_never_overlap_at_any_width_and_depth(width, depth):
    slots = _slots(width, depth)
    named = [slots.beta, slots.weights, *slots.depth, *(s for chain in slots.steps for s in chain)]
    every = [0, *(slot for block in named for slot in block)]
    assert len(every) == len(set(every)) and max(every) < SLOTS_PER_OP


@pytest.mark.parametrize("positions", [0, 1, 2, 16])
def test_policy_positions_take_three_slots_each_after_the_coin(positions):
    slots = position_slots(positions)
    assert [list(s) for s in slots] == [[1 + 3 * k, 2 + 3 * k, 3 + 3 * k] for k in range(positions)]


def test_the_layout_limit_is_the_last_slot_rng_draws():
    states = np.zeros(1, dtype=np.uint64)
    uniform01(states, 0, SLOTS_PER_OP - 1)
    with pytest.raises(ValueError):
        uniform01(states, 0, SLOTS_PER_OP)
