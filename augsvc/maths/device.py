"""How work runs on a device: the CPU-or-CUDA answers the engine and the kernels need.

Everything that differs between the host and a CUDA device is decided here, once per
device, instead of by a ``device.type`` test where it matters: how many samples a
chunk holds, whether chunks run side by side on worker threads, how a batch and the
first warp's regions reach the device, how uint8 blocks are summed, and whether a
mean must be added in an order-free way. A kernel asks :func:`execution` for the
policy of the tensor it holds; the answers never depend on the batch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")
R = TypeVar("R")

#: Output pixels a CUDA chunk may hold: each stage keeps a float copy or two of every
#: channel (tens of bytes a pixel), so this bounds device memory near 2 GiB whatever
#: the request's pixel budget admitted, while a batch of 256 crops of 224 is one chunk.
DEVICE_CHUNK_PIXELS = 1 << 25


@dataclass(frozen=True)
class ExecutionPolicy:
    """The answers for one device.

    ``chunk_rows``: samples processed together. On the CPU a few at a time keep each
    sample's float copy in cache through warp, colour and conversion (whole batches
    spill out of it); a device wants the whole group in one launch, up to
    ``chunk_pixels`` output pixels (None: no bound).
    ``threaded``: chunks run side by side on :func:`cpu_workers` (a CUDA stream is
    per thread, so a device runs its chunks in the calling thread).
    ``packed_uploads``: a batch goes up from pinned memory without blocking, and
    per-sample parameters as one packed table.
    ``gathers_regions``: the first warp uploads every region of a chunk at once and
    warps the affine ones in one gather pass.
    ``order_free_means``: a device's reductions split work by the number of outputs, so
    a mean is summed exactly (``colour.exact_means``) to stay a function of the sample;
    on the CPU a row's sum does not depend on the batch and is kept as it was.
    ``host_sums``: uint8 block sums are numpy's widening adds (the host's fastest);
    a device uses torch's strided adds."""

    device: torch.device
    chunk_rows: int
    chunk_pixels: int | None
    threaded: bool
    packed_uploads: bool
    gathers_regions: bool
    order_free_means: bool
    host_sums: bool

    def to_device(self, batch: torch.Tensor) -> torch.Tensor:
        """A host batch uploaded without blocking from pinned memory (a device), or
        handed back (the CPU)."""
        if self.packed_uploads and batch.device.type == "cpu":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)

    def rows_per_chunk(self, pixels_per_row: int) -> int:
        """How many rows of ``pixels_per_row`` output pixels one chunk holds."""
        if self.chunk_pixels is None:
            return self.chunk_rows
        return max(1, min(self.chunk_rows, self.chunk_pixels // pixels_per_row))

    def split(self, rows: list[int], pixels: np.ndarray) -> list[list[int]]:
        """``rows`` (with their output pixels) cut into this device's chunks."""
        return split_rows(rows, pixels, self.chunk_rows, self.chunk_pixels)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` over the items, in order: on the CPU workers when the caller's torch
        uses more than one thread and there is more than one item, else here."""
        items = list(items)
        if not self.threaded or torch.get_num_threads() == 1 or len(items) <= 1:
            return [fn(item) for item in items]
        return list(cpu_workers().map(fn, items))

    def stream_key(self) -> int:
        """The calling thread's CUDA stream (0 elsewhere). Cached device tensors are kept
        per stream: one made on another thread's stream could still be being written,
        or be freed and its memory reused there, while this stream reads it."""
        if self.device.type == "cuda":
            return torch.cuda.current_stream(self.device).stream_id
        return 0


_HOST = dict(
    chunk_rows=4,
    chunk_pixels=None,
    threaded=True,
    packed_uploads=False,
    gathers_regions=False,
    order_free_means=False,
    host_sums=True,
)
_DEVICE = dict(
    chunk_rows=1 << 30,
    chunk_pixels=DEVICE_CHUNK_PIXELS,
    threaded=False,
    packed_uploads=True,
    gathers_regions=True,
    order_free_means=True,
    host_sums=False,
)
_policies: dict[torch.device, ExecutionPolicy] = {}


def execution(device: torch.device | str) -> ExecutionPolicy:
    """The policy of ``device`` (the CPU's, or every other device's)."""
    device = torch.device(device) if isinstance(device, str) else device
    policy = _policies.get(device)
    if policy is None:
        answers = _HOST if device.type == "cpu" else _DEVICE
        policy = _policies[device] = ExecutionPolicy(device, **answers)  # type: ignore[arg-type]
    return policy


def split_rows(
    rows: list[int], pixels: np.ndarray, step: int, max_pixels: int | None
) -> list[list[int]]:
    """``rows`` in order, cut into runs of at most ``step`` rows and (when given) at
    most ``max_pixels`` pixels, a row larger than that alone in its run."""
    chunks: list[list[int]] = []
    held = 0
    for row, px in zip(rows, np.asarray(pixels).tolist(), strict=True):
        full = chunks and (
            len(chunks[-1]) >= step or (max_pixels is not None and held + px > max_pixels)
        )
        if not chunks or full:
            chunks.append([])
            held = 0
        chunks[-1].append(row)
        held += px
    return chunks


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _forget_pools_after_fork() -> None:
    """A forked child (a DataLoader worker) inherits the pool objects but not their
    threads; submitting to one would wait forever, so the child starts afresh."""
    global _pools, _pools_lock
    _pools, _pools_lock = {}, threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_after_fork)


def _single_threaded() -> None:
    torch.set_num_threads(1)  # per thread under OpenMP: the caller's setting is untouched


def cpu_workers() -> ThreadPoolExecutor:
    """Threads that run CPU chunks side by side, each with single-threaded torch ops.

    Intra-op threading over a chunk's small tensors costs about a third more CPU than
    it saves, and under CPU contention OpenMP's spinning collapses throughput; chunks
    in parallel avoid both. The pool has as many threads as torch would use in the
    calling thread.

    ``torch.get_num_threads`` is a per-thread value under OpenMP, so two callers can
    ask for different sizes at once. Each size keeps its own pool and no pool is
    ever shut down: replacing a pool that another thread is submitting to failed
    that thread's work ("cannot schedule new futures after shutdown"). Threads start
    lazily and idle ones cost nothing, and there are only ever a few sizes.
    """
    want = torch.get_num_threads()
    with _pools_lock:
        pool = _pools.get(want)
        if pool is None:
            pool = _pools[want] = ThreadPoolExecutor(
                want, "augsvc-cpu", initializer=_single_threaded
            )
        return pool
