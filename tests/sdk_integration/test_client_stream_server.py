"""The stream client and the DataLoader adapter against the real stream endpoint
(`augsvc serve` with a registered folder dataset), through a TCP proxy that cuts the
connection mid-stream."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from augsvc_client import Client, RetryPolicy, errors
from augsvc_client.torch_data import AugsvcIterableDataset
from torch.utils.data import DataLoader

from tests.imagegen import png_bytes

pytestmark = pytest.mark.slow

N_IMAGES = 50
RECIPE = {"ops": [{"op": "rotate", "degrees": 15}, {"op": "resize", "size": [24, 24]}]}
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


@pytest.fixture(scope="module")
def served(start_augsvc, tmp_path_factory) -> str:
    root: Path = tmp_path_factory.mktemp("sdk-data") / "train"
    for i in range(N_IMAGES):
        folder = root / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:03d}.png").write_bytes(png_bytes(40, 30, seed=i))
    url = start_augsvc(AUGSVC_DATA_ROOTS=str(root)).url
    with Client(url) as client:
        client.put_recipe("sdk-stream", RECIPE)
        registered = client.put_dataset("train", "folder", str(root))
        assert registered["size"] == N_IMAGES
    return url


def test_dataset_registration_and_unknown_dataset(served):
    with Client(served, retry=FAST) as client:
        assert client.get_dataset("train")["classes"] == ["class0", "class1", "class2"]
        with pytest.raises(errors.DatasetNotFound):
            client.get_dataset("nope")
        with pytest.raises(errors.DatasetNotFound):
            list(client.stream("nope", "sdk-stream", seed=1))


def test_a_cut_stream_resumes_with_the_same_samples_and_bytes(served, tcp_proxy):
    kwargs = {"seed": 3, "batch_size": 4, "rank": 1, "world_size": 2}
    with Client(served) as client:
        whole = list(client.stream("train", "sdk-stream", **kwargs))
    parts = urlsplit(served)
    proxy = tcp_proxy((parts.hostname, parts.port), cut_after=9_000)
    with Client(proxy.url, retry=FAST) as client:
        resumed = list(client.stream("train", "sdk-stream", **kwargs))
    assert proxy.cuts == 1 and proxy.connections == 2
    indices = [int(i) for b in whole for i in b.indices]
    assert len(indices) == len(set(indices)) == N_IMAGES // 2
    assert [int(i) for b in resumed for i in b.indices] == indices
    np.testing.assert_array_equal(
        np.concatenate([b.images for b in resumed]), np.concatenate([b.images for b in whole])
    )
    assert whole[0].position == 1  # rank 1's first global position


def test_dataloader_with_two_workers_sees_every_sample_once(served):
    dataset = AugsvcIterableDataset(served, "train", "sdk-stream", seed=5, batch_size=4)
    batches = list(DataLoader(dataset, batch_size=None, num_workers=2))
    indices = torch.cat([b["indices"] for b in batches]).tolist()
    assert sorted(indices) == list(range(N_IMAGES))
    assert all(b["images"].shape[1:] == (3, 24, 24) for b in batches)
    assert all("labels" in b for b in batches)


def test_a_recipe_updated_mid_stream_does_not_change_the_resumed_epoch(served, tcp_proxy):
    """The first frame pins the recipe digest: after the cut, the client resumes with
    ``sha256:<digest>``, so a new version stored under the name in between does not
    change how the rest of the epoch is augmented."""
    kwargs = {"seed": 4, "batch_size": 4}
    with Client(served) as client:
        client.put_recipe("pinned", RECIPE)
        whole = list(client.stream("train", "pinned", **kwargs))
    parts = urlsplit(served)
    proxy = tcp_proxy((parts.hostname, parts.port), cut_after=9_000)  # inside frame 2
    with Client(proxy.url, retry=FAST) as client, Client(served) as admin:
        batches = client.stream("train", "pinned", **kwargs)
        resumed = [next(batches)]
        newer = {"ops": [{"op": "vflip", "p": 1.0}, {"op": "resize", "size": [24, 24]}]}
        assert admin.put_recipe("pinned", newer)["version"] == 2
        resumed += list(batches)
    assert proxy.cuts == 1 and proxy.connections == 2
    assert {b.digest for b in resumed} == {whole[0].digest}
    np.testing.assert_array_equal(
        np.concatenate([b.images for b in resumed]), np.concatenate([b.images for b in whole])
    )
    with Client(served) as client:  # a new stream by name does get the new version
        fresh = next(iter(client.stream("train", "pinned", **kwargs)))
    assert fresh.digest != whole[0].digest


def epoch_batches(loader: DataLoader, dataset: AugsvcIterableDataset, epoch: int) -> list[dict]:
    dataset.set_epoch(epoch)
    return list(loader)


def by_index(batches: list[dict]) -> dict[int, torch.Tensor]:
    return {
        int(i): image for b in batches for i, image in zip(b["indices"], b["images"], strict=True)
    }


def test_persistent_workers_see_each_new_epoch(served):
    """Persistent workers keep their copy of the dataset for the whole run: the epoch
    set in the parent must still reach them, or every epoch repeats the first."""
    dataset = AugsvcIterableDataset(
        served, "train", "sdk-stream", seed=5, batch_size=4, num_workers=2
    )
    loader = DataLoader(dataset, batch_size=None, num_workers=2, persistent_workers=True)
    first, second = (epoch_batches(loader, dataset, epoch) for epoch in (0, 1))
    for batches in (first, second):
        indices = torch.cat([b["indices"] for b in batches]).tolist()
        assert sorted(indices) == list(range(N_IMAGES))  # every sample exactly once
        assert len(loader) == len(dataset) == len(batches)
    assert [b["indices"].tolist() for b in first] != [b["indices"].tolist() for b in second]
    old, new = by_index(first), by_index(second)
    assert sum(not torch.equal(old[i], new[i]) for i in range(N_IMAGES)) > N_IMAGES // 2
    again = by_index(epoch_batches(loader, dataset, 0))  # the same workers, back to epoch 0
    assert all(torch.equal(old[i], again[i]) for i in range(N_IMAGES))


def test_len_counts_each_workers_partial_batch_and_drop_last(served):
    for drop_last in (False, True):
        dataset = AugsvcIterableDataset(
            served, "train", "sdk-stream", seed=5, batch_size=5, rank=1, world_size=2,
            num_workers=2, drop_last=drop_last,
        )  # fmt: skip
        batches = list(DataLoader(dataset, batch_size=None, num_workers=2))
        # rank 1 of 2 with 2 workers: shards 2 and 3 of 4 hold 12 samples each
        assert len(batches) == len(dataset) == (4 if drop_last else 6)
        sizes = sorted(len(b["indices"]) for b in batches)
        assert sizes == ([5] * 4 if drop_last else [2, 2, 5, 5, 5, 5])


def test_a_dataloader_with_another_worker_count_is_refused(served):
    dataset = AugsvcIterableDataset(served, "train", "sdk-stream", seed=5, num_workers=2)
    with pytest.raises(ValueError, match=r"num_workers=2\) is iterated by 1 DataLoader"):
        list(DataLoader(dataset, batch_size=None, num_workers=0))
    with pytest.raises(TypeError, match="pass num_workers="):
        len(AugsvcIterableDataset(served, "train", "sdk-stream", seed=5))
