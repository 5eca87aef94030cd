"""The order of an epoch and each rank's share of it.

An epoch's order is a permutation of the dataset fixed by (seed, epoch): sort the
indices by a counter-based hash, so it needs no generator state and every replica
computes the same one. Global positions ``start + rank + j * world_size`` (j = 0, 1, ...)
belong to ``rank``: the ranks of one job interleave, their union is every position
from ``start`` on exactly once, and a job that checkpointed at global position k
resumes with ``start = k`` under any world size.
"""

from __future__ import annotations

import numpy as np

from augsvc.maths.rng import mix64, stream_base

MAX_EPOCH = 2**31 - 1


def epoch_order(size: int, seed: int, epoch: int) -> np.ndarray:
    """Dataset indices in the order of ``epoch`` (int64, a permutation of range(size))."""
    base = np.uint64(stream_base(f"epoch:{epoch}", seed))
    ranks = mix64(np.arange(size, dtype=np.uint64) ^ base)
    return np.argsort(ranks, kind="stable").astype(np.int64)


def rank_positions(size: int, rank: int, world_size: int, start: int) -> np.ndarray:
    """The global epoch positions this rank streams, in order."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError("need 0 <= rank < world_size")
    return np.arange(start + rank, size, world_size, dtype=np.int64)


def sample_keys(epoch: int, positions: np.ndarray) -> np.ndarray:
    """Sample keys that combine epoch and position, so every epoch augments afresh."""
    return (np.int64(epoch) << np.int64(32)) + positions
