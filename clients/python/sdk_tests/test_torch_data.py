"""The torch IterableDataset adapter: sharding by rank and DataLoader worker."""

from __future__ import annotations

import pickle
from multiprocessing.reduction import ForkingPickler

import pytest

torch = pytest.importorskip("torch")

from augsvc_client.torch_data import (  # noqa: E402  (after the skip: torch is an extra)
    AugsvcIterableDataset,
    distributed_rank_world,
    worker_shard,
)
from torch.utils.data import DataLoader  # noqa: E402

from .helpers import IMAGE_SHAPE, STREAM_SIZE, sample_label  # noqa: E402


def test_worker_shards_tile_every_rank():
    shards = {worker_shard(r, 3, w, 2) for r in range(3) for w in range(2)}
    assert shards == {(s, 6) for s in range(6)}
    assert distributed_rank_world() == (0, 1)  # torch.distributed not initialised
    assert distributed_rank_world(2, 4) == (2, 4)


def collect(dataset: AugsvcIterableDataset, workers: int) -> list[dict]:
    loader = DataLoader(dataset, batch_size=None, num_workers=workers)
    return list(loader)


def test_dataloader_with_two_workers_sees_every_sample_exactly_once(stream_server):
    dataset = AugsvcIterableDataset(stream_server.url, "synthetic", "r", seed=11, batch_size=8)
    batches = collect(dataset, workers=2)
    indices = torch.cat([b["indices"] for b in batches])
    assert sorted(indices.tolist()) == list(range(STREAM_SIZE))
    for batch in batches:
        assert batch["images"].dtype == torch.uint8 and batch["images"].shape[1:] == IMAGE_SHAPE
        assert (batch["images"][:, 0, 0, 0] == batch["indices"] % 256).all()
        assert batch["labels"].tolist() == [sample_label(int(i)) for i in batch["indices"]]
    shards = sorted((r["rank"], r["world_size"]) for r in stream_server.state["requests"])
    assert shards == [("0", "2"), ("1", "2")]


def test_two_ranks_with_two_workers_each_see_every_sample_exactly_once(stream_server):
    seen: list[int] = []
    for rank in range(2):
        dataset = AugsvcIterableDataset(
            stream_server.url, "synthetic", "r", seed=11, epoch=3, batch_size=8,
            rank=rank, world_size=2,
        )  # fmt: skip
        seen += torch.cat([b["indices"] for b in collect(dataset, workers=2)]).tolist()
    assert sorted(seen) == list(range(STREAM_SIZE))
    assert {r["world_size"] for r in stream_server.state["requests"]} == {"4"}
    assert {r["epoch"] for r in stream_server.state["requests"]} == {"3"}


def test_set_epoch_changes_the_order(stream_server):
    dataset = AugsvcIterableDataset(stream_server.url, "synthetic", "r", seed=1, batch_size=200)
    first = collect(dataset, workers=0)[0]["indices"].tolist()
    dataset.set_epoch(1)
    second = collect(dataset, workers=0)[0]["indices"].tolist()
    assert sorted(first) == sorted(second) == list(range(STREAM_SIZE))
    assert first != second


def test_the_epoch_survives_the_pickling_that_spawned_workers_get():
    """Under the spawn (or forkserver) start method a worker gets the dataset pickled by
    multiprocessing's ForkingPickler: the epoch must stay shared with the parent."""
    dataset = AugsvcIterableDataset("http://127.0.0.1:9", "synthetic", "r", seed=2, epoch=3)
    copy = pickle.loads(ForkingPickler.dumps(dataset))
    assert copy.epoch == 3
    dataset.set_epoch(4)
    assert copy.epoch == 4
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        dataset.set_epoch(-1)
