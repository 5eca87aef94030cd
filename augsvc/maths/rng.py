"""Counter-based random draws: every number is a pure function of its coordinates.

A draw is ``hash(recipe digest, seed, sample key, op index, slot)`` put through
splitmix64's finaliser and turned into a float64 in [0, 1). There is no generator
state, so the value a sample gets cannot depend on which other samples share its
batch, how a request was split, which replica served it, or the order of anything.
numpy uint64 arrays give wrapping multiplies and logical shifts, vectorised over
the batch; a draw costs microseconds per batch, on the CPU, identically everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SLOTS_PER_OP = 1 << 12
MAX_SEED = _MASK


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _mix_int(x: int) -> int:
    return int(mix64(np.array([x & _MASK], dtype=np.uint64))[0])


def stream_base(digest: str, seed: int) -> int:
    """The 64-bit root of one (recipe, seed) stream."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in 0..{MAX_SEED}")
    d = int.from_bytes(hashlib.sha256(digest.encode()).digest()[:8], "little")
    return _mix_int(d ^ _mix_int(seed + _GOLDEN))


def sample_states(base: int, keys: np.ndarray) -> np.ndarray:
    """One 64-bit state per sample key (keys are non-negative int64)."""
    k = np.asarray(keys, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        return mix64(np.uint64(base) ^ mix64(k * np.uint64(_GOLDEN) + np.uint64(1)))


def uniform01(states: np.ndarray, op_index: int, slot: int) -> np.ndarray:
    """float64 in [0, 1) for draw (op_index, slot) of each sample state."""
    if not 0 <= slot < _SLOTS_PER_OP:
        raise ValueError(f"slot must be in 0..{_SLOTS_PER_OP - 1}")
    counter = np.uint64(_mix_int(op_index * _SLOTS_PER_OP + slot + _GOLDEN))
    bits = mix64(states ^ counter)
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass(frozen=True)
class Draws:
    """The draws of one op for a batch: ``draws.uniform(slot, lo, hi)`` and friends.

    Slots number the independent quantities an op draws (slot 0 is every op's
    apply-or-skip coin; each op documents the rest); they are part of the op's
    contract, so changing them changes its samples.

    An op chosen per sample by a combinator or policy gets draws with a ``gate`` (the
    samples that chose it; its apply coin is anded with it) and, from a policy, ``fixed``
    values for some slots (the magnitude the policy drew), which ``uniform`` returns
    as they are instead of drawing.
    """

    states: np.ndarray
    op_index: int
    gate: np.ndarray | None = None
    fixed: Mapping[int, np.ndarray] | None = None

    @property
    def n(self) -> int:
        return len(self.states)

    def uniform(self, slot: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
        if self.fixed is not None and slot in self.fixed:
            return np.asarray(self.fixed[slot], dtype=np.float64)
        return lo + (hi - lo) * uniform01(self.states, self.op_index, slot)

    def log_uniform(self, slot: int, lo: float, hi: float) -> np.ndarray:
        return np.exp(self.uniform(slot, np.log(lo), np.log(hi)))

    def bernoulli(self, slot: int, p: float) -> np.ndarray:
        if p >= 1.0:
            return np.ones(self.n, dtype=bool)
        if p <= 0.0:
            return np.zeros(self.n, dtype=bool)
        return uniform01(self.states, self.op_index, slot) < p
