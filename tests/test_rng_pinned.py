"""The counter-based draws against pinned values and a pure-Python splitmix64: the
digest and seed's stream root, each sample key's mixing into a state, and each
(op, slot) counter. Integer maths only, so these hold on every CPU; a change to any
constant or step of the mixing changes every sample a recipe ever produced."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from augsvc.maths.rng import MAX_SEED, Draws, sample_states, stream_base, uniform01

MASK = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
SLOTS = 1 << 12


def mix(x: int) -> int:
    """splitmix64's finaliser on Python ints, written from its definition."""
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def reference_base(digest: str, seed: int) -> int:
    d = int.from_bytes(hashlib.sha256(digest.encode()).digest()[:8], "little")
    return mix(d ^ mix((seed + GOLDEN_GAMMA) & MASK))


def reference_state(base: int, key: int) -> int:
    return mix(base ^ mix((key * GOLDEN_GAMMA + 1) & MASK))


def reference_uniform(state: int, op_index: int, slot: int) -> float:
    counter = mix((op_index * SLOTS + slot + GOLDEN_GAMMA) & MASK)
    return (mix(state ^ counter) >> 11) / float(1 << 53)


DIGEST = "sha256:" + "ab" * 32
KEYS = [0, 1, 2, 7, 1000, 2**31, 2**40 + 3, 2**63 - 1]
#: stream_base(DIGEST, seed) for these seeds.
PINNED_BASES = {
    0: 0xED2DA0D05E8A2786,
    5: 0xBC5991F0A9D1996F,
    2**64 - 1: 0xBA01C8FE5855FFBE,
}
#: sample_states(stream_base(DIGEST, 5), KEYS).
PINNED_STATES = [
    0x0F48892E6C2E8591, 0x95308118B2E59049, 0x320A33DD5B54B11D, 0x42C414DE9AFF4ADC,
    0xDF84325444850D6B, 0xF874475F42743EB4, 0xF44C9050823AF576, 0x2CC5FED0448AA915,
]  # fmt: skip
#: uniform01(those states, op_index, slot) as float.hex, for (op_index, slot).
PINNED_UNIFORMS = {
    (0, 0): [
        "0x1.8322f0b947f64p-3", "0x1.1861b84127775p-1", "0x1.7898833649494p-3",
        "0x1.2c261f1f54374p-1", "0x1.1ff40bcd5b009p-1", "0x1.886e50d01df0ep-2",
        "0x1.f5c9748140b0ap-2", "0x1.0ab116ade99cep-1",
    ],
    (3, 4095): [
        "0x1.fd8a88e806162p-1", "0x1.a98cb4e6cd0d0p-3", "0x1.36ac88b73ab26p-2",
        "0x1.be6e4ad2c4fd8p-1", "0x1.72dd3f2e2f970p-4", "0x1.9c44f93ce5b10p-4",
        "0x1.dc85ea0a94d60p-5", "0x1.e416e22193e9ap-2",
    ],
    (-1, 1): [
        "0x1.21ab08dc6e63ep-2", "0x1.e18e026ebf300p-9", "0x1.9390b6aa9db4ep-2",
        "0x1.82b9b94247b99p-1", "0x1.2bf8a048fdf69p-1", "0x1.c2cceff5b4294p-1",
        "0x1.98c805deda572p-1", "0x1.3a0fdc9e2487fp-1",
    ],
}  # fmt: skip


def test_stream_roots_are_pinned():
    for seed, expected in PINNED_BASES.items():
        assert stream_base(DIGEST, seed) == expected, seed
        assert reference_base(DIGEST, seed) == expected, seed
    assert stream_base(DIGEST, 0) != stream_base("sha256:" + "ab" * 31 + "ac", 0)
    with pytest.raises(ValueError):
        stream_base(DIGEST, MAX_SEED + 1)


def test_each_sample_keys_mixing_is_pinned():
    states = sample_states(stream_base(DIGEST, 5), np.array(KEYS, dtype=np.int64))
    assert states.dtype == np.uint64
    assert [int(s) for s in states] == PINNED_STATES
    base = stream_base(DIGEST, 5)
    assert [reference_state(base, k) for k in KEYS] == PINNED_STATES


def test_each_op_and_slots_draws_are_pinned():
    states = np.array(PINNED_STATES, dtype=np.uint64)
    for (op_index, slot), expected in PINNED_UNIFORMS.items():
        drawn = uniform01(states, op_index, slot)
        assert [v.hex() for v in drawn.tolist()] == expected, (op_index, slot)
        draws = Draws(states, op_index)
        assert [v.hex() for v in draws.uniform(slot).tolist()] == expected


@given(
    digest=st.text(max_size=80),
    seed=st.integers(0, MAX_SEED),
    keys=st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=8),
    op_index=st.integers(-1, 200),
    slot=st.integers(0, SLOTS - 1),
)
def test_the_draws_are_splitmix64_as_written(digest, seed, keys, op_index, slot):
    """Any digest, seed, key, op and slot: the vectorised numpy draws equal the
    definition on Python integers (no overflow, sign or shift mistakes anywhere)."""
    base = stream_base(digest, seed)
    assert base == reference_base(digest, seed)
    states = sample_states(base, np.array(keys, dtype=np.int64))
    assert [int(s) for s in states] == [reference_state(base, k) for k in keys]
    drawn = uniform01(states, op_index, slot).tolist()
    assert drawn == [reference_uniform(reference_state(base, k), op_index, slot) for k in keys]
