"""A torch ``IterableDataset`` over a server-side dataset stream (needs the torch extra).

Sharding: the global epoch order is split first by distributed rank, then by DataLoader
worker. Worker ``w`` of ``W`` inside rank ``r`` of ``R`` reads shard ``r * W + w`` of
``R * W``, so across all ranks and workers every sample of the epoch arrives exactly
once. Rank and world size come from ``torch.distributed`` when it is initialised,
unless given. Use it with ``DataLoader(ds, batch_size=None, num_workers=N)``: the
server already batches, and each item is a dict of tensors::

    {"images": uint8 (B, C, H, W), "indices": int64 (B,), "labels": int64 (B,)}

(``labels`` only when the dataset has them; ``targets``, a list of per-sample dicts of
boxes, keypoints and masks, only for datasets with targets). With ``mix=`` (the
stream's MixUp / CutMix settings, see ``Client.stream``) items also hold
``soft_targets`` (float32), ``lam`` and ``partners``.

Epochs: call :meth:`set_epoch` before each epoch, like ``DistributedSampler``; without
it every pass repeats the same epoch. DataLoader workers iterate copies of the dataset
(persistent workers keep theirs for the whole run), so the epoch is kept in shared
memory, created here in the parent: a worker reads it each time it starts a pass.

Length: ``len(ds)`` is the number of batches this rank yields per epoch. Each worker's
shard ends in its own partial batch, so the count depends on the DataLoader's worker
count; the dataset must be told it (``num_workers=``, the same number as the
DataLoader's), and once told it refuses to run in a DataLoader with another one.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
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


def batches_per_epoch(
    size: int, batch_size: int, drop_last: bool, rank: int, world_size: int, workers: int
) -> int:
    """Batches rank ``rank`` yields in one epoch of ``size`` samples: the sum over its
    workers' shards, each cut into batches on its own (as the server streams them)."""
    total = 0
    for worker in range(max(workers, 1)):
        shard, shards = worker_shard(rank, world_size, worker, max(workers, 1))
        samples = len(range(shard, size, shards))
        total += samples // batch_size if drop_last else -(-samples // batch_size)
    return total


class AugsvcIterableDataset(IterableDataset):  # type: ignore[type-arg]
    """A dataset stream as a torch IterableDataset (see the module docstring);
    ``base_url`` and ``api_key`` None read ``AUGSVC_URL`` / ``AUGSVC_API_KEY``, as
    :class:`~augsvc_client.Client` does."""

    def __init__(
        self,
        base_url: str | None,
        dataset: str,
        recipe: str,
        seed: int,
        epoch: int = 0,
        batch_size: int = 64,
        rank: int | None = None,
        world_size: int | None = None,
        *,
        num_workers: int | None = None,
        api_key: str | None = None,
        drop_last: bool = False,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        mix: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if num_workers is not None and num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.base_url = base_url
        self.dataset = dataset
        self.recipe = recipe
        self.seed = seed
        # Shared with every DataLoader worker, including persistent ones (see module doc).
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self.set_epoch(epoch)
        self.batch_size = batch_size
        self.rank, self.world_size = distributed_rank_world(rank, world_size)
        self.num_workers = num_workers
        self.api_key = api_key
        self.drop_last = drop_last
        self.timeout = timeout
        self.retry = retry
        self.mix = dict(mix) if mix else None
        self._size: int | None = None

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """The epoch of the next pass, in this process and in every DataLoader worker."""
        epoch = operator.index(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._epoch[0] = epoch

    def _client(self) -> Client:
        return Client(self.base_url, self.api_key, timeout=self.timeout, retry=self.retry)

    @property
    def size(self) -> int:
        """Samples in one epoch: the dataset's ``size``, asked of the server once."""
        if self._size is None:
            with self._client() as client:
                self._size = int(client.get_dataset(self.dataset)["size"])
        return self._size

    def __len__(self) -> int:
        if self.num_workers is None:
            raise TypeError(
                "len(AugsvcIterableDataset) depends on the DataLoader's worker count: "
                "pass num_workers= (the DataLoader's num_workers) to the dataset"
            )
        return batches_per_epoch(
            self.size, self.batch_size, self.drop_last, self.rank, self.world_size,
            self.num_workers,
        )  # fmt: skip

    def shard(self) -> tuple[int, int]:
        """This process's (shard, shards), from the rank and the current worker."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self.num_workers is not None and max(self.num_workers, 1) != workers:
            raise ValueError(
                f"AugsvcIterableDataset(num_workers={self.num_workers}) is iterated by "
                f"{workers} DataLoader worker(s): give the dataset and the DataLoader the "
                "same num_workers, or len() would count the wrong number of batches"
            )
        return worker_shard(self.rank, self.world_size, worker, workers)

    def __iter__(self) -> Any:
        shard, shards = self.shard()
        return self._batches(shard, shards, self.epoch)

    def _batches(self, shard: int, shards: int, epoch: int) -> Any:
        # One client per worker process, created here (after the fork), never pickled.
        with self._client() as client:
            for batch in client.stream(
                self.dataset,
                self.recipe,
                self.seed,
                epoch=epoch,
                batch_size=self.batch_size,
                rank=shard,
                world_size=shards,
                drop_last=self.drop_last,
                output="torch",
                mix=self.mix,
            ):
                item = {"images": batch.images, "indices": batch.indices}
                for name in ("labels", "targets", "soft_targets", "lam", "partners"):
                    if (value := getattr(batch, name)) is not None:
                        item[name] = value
                yield item


def collate_detection(samples: list[tuple[Any, Any]]) -> tuple[torch.Tensor, list[Any]]:
    """``DataLoader(..., collate_fn=collate_detection)`` for (image, targets) samples, as
    torchvision's detection models take them: images stacked into one (B, C, H, W)
    tensor when they share a shape (else kept as a list), targets as a list with one
    entry per image, since images hold different numbers of boxes."""
    images = [torch.as_tensor(image) for image, _ in samples]
    targets = [target for _, target in samples]
    if images and all(image.shape == images[0].shape for image in images):
        return torch.stack(images), targets
    return images, targets  # type: ignore[return-value]
