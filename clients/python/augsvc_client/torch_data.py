"""A torch ``IterableDataset`` over a server-side dataset stream (needs the torch extra).

Sharding: the global epoch order is split first by distributed rank, then by DataLoader
worker. Worker ``w`` of ``W`` inside rank ``r`` of ``R`` reads shard ``r * W + w`` of
``R * W``, so across all ranks and workers every sample of the epoch arrives exactly
once. Rank and world size come from ``torch.distributed`` when it is initialised,
unless given. Use it with ``DataLoader(ds, batch_size=None, num_workers=N)``: the
server already batches, and each item is a dict of tensors::

    {"images": uint8 (B, C, H, W), "indices": int64 (B,), "labels": int64 (B,)}

(``labels`` only when the dataset has them). Call :meth:`set_epoch` before each epoch,
like ``DistributedSampler``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import IterableDataset, get_worker_info

from .client import DEFAULT_TIMEOUT, Client
from .retry import RetryPolicy


def distributed_rank_world(
    rank: int | None = None, world_size: int | None = None
) -> tuple[int, int]:
    """(rank, world size): the given values, else torch.distributed's, else (0, 1)."""
    dist = torch.distributed
    initialised = dist.is_available() and dist.is_initialized()
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    if world_size is None:
        world_size = dist.get_world_size() if initialised else 1
    return rank, world_size


def worker_shard(rank: int, world_size: int, worker: int, workers: int) -> tuple[int, int]:
    """(shard, shards) for DataLoader worker ``worker`` of ``workers`` within ``rank``."""
    return rank * workers + worker, world_size * workers


class AugsvcIterableDataset(IterableDataset):  # type: ignore[type-arg]
    def __init__(
        self,
        base_url: str,
        dataset: str,
        recipe: str,
        seed: int,
        epoch: int = 0,
        batch_size: int = 64,
        rank: int | None = None,
        world_size: int | None = None,
        *,
        api_key: str | None = None,
        drop_last: bool = False,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.base_url = base_url
        self.dataset = dataset
        self.recipe = recipe
        self.seed = seed
        self.epoch = epoch
        self.batch_size = batch_size
        self.rank, self.world_size = distributed_rank_world(rank, world_size)
        self.api_key = api_key
        self.drop_last = drop_last
        self.timeout = timeout
        self.retry = retry

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard(self) -> tuple[int, int]:
        """This process's (shard, shards), from the rank and the current worker."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return worker_shard(self.rank, self.world_size, worker, workers)

    def __iter__(self) -> Any:
        shard, shards = self.shard()
        # One client per worker process, created here (after the fork), never pickled.
        with Client(self.base_url, self.api_key, timeout=self.timeout, retry=self.retry) as client:
            for batch in client.stream(
                self.dataset,
                self.recipe,
                self.seed,
                epoch=self.epoch,
                batch_size=self.batch_size,
                rank=shard,
                world_size=shards,
                drop_last=self.drop_last,
                output="torch",
            ):
                item = {"images": batch.images, "indices": batch.indices}
                if batch.labels is not None:
                    item["labels"] = batch.labels
                yield item
