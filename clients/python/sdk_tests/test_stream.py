"""The stream client against a real loopback server speaking the stream contract.

The server (conftest ``stream_server``) serves a synthetic dataset whose pixels and labels
encode each sample's index, chunked, two chunks per frame. A TCP proxy cuts the first
connection mid-frame to show that a dropped stream resumes with no sample lost or
duplicated. End-to-end tests against the real ``augsvc serve`` stream endpoint live with
the server's tests once it exists.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import numpy as np
import pytest
from augsvc_client import AsyncClient, Client, RetryPolicy, errors
from augsvc_client.wire import FrameBuffer, decode_stream_frame

from .helpers import STREAM_SIZE, epoch_order, sample_image, sample_label, stream_frames

FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05, deadline=10.0)


def expected_indices(seed: int, epoch: int, rank: int, world: int, start: int = 0) -> list[int]:
    order = epoch_order(seed, epoch)
    return [int(order[p]) for p in range(start + rank, STREAM_SIZE, world)]


def check_batch(batch) -> None:
    for image, index, label in zip(batch.images, batch.indices, batch.labels, strict=True):
        np.testing.assert_array_equal(image, sample_image(int(index)))
        assert label == sample_label(int(index))


def upstream(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def test_frame_buffer_reassembles_frames_fed_byte_by_byte():
    params = {"seed": "1", "batch_size": "10"}
    data = b"".join(stream_frames(params))
    frames, buffer = [], FrameBuffer()
    for i in range(len(data)):
        frames.extend(buffer.feed(data[i : i + 1]))
    assert buffer.pending == 0
    assert len(frames) == 11  # 103 samples in batches of 10
    first = decode_stream_frame(frames[0])
    assert (first.position, first.epoch, first.batch, len(first)) == (0, 0, 0, 10)
    assert decode_stream_frame(frames[-1]).position == 100


def test_frame_buffer_refuses_absurd_lengths():
    with pytest.raises(ValueError, match="claims"):
        list(FrameBuffer(max_frame_bytes=100).feed((10**6).to_bytes(8, "little") + b"x"))


def test_one_rank_gets_its_share_in_epoch_order(stream_server):
    with Client(stream_server.url, retry=FAST) as client:
        batches = list(client.stream("synthetic", "r", seed=3, epoch=1, batch_size=8))
    got = [int(i) for b in batches for i in b.indices]
    assert got == expected_indices(3, 1, 0, 1)
    assert [b.position for b in batches] == list(range(0, STREAM_SIZE, 8))
    assert all(b.epoch == 1 for b in batches)
    for batch in batches:
        check_batch(batch)


def test_ranks_partition_the_epoch(stream_server):
    seen: list[int] = []
    with Client(stream_server.url) as client:
        for rank in range(3):
            batches = client.stream(
                "synthetic", "r", seed=5, batch_size=16, rank=rank, world_size=3
            )
            mine = [int(i) for b in batches for i in b.indices]
            assert mine == expected_indices(5, 0, rank, 3)
            seen += mine
    assert sorted(seen) == list(range(STREAM_SIZE))


def test_drop_last_and_torch_output(stream_server):
    torch = pytest.importorskip("torch")

    with Client(stream_server.url) as client:
        batches = list(
            client.stream("synthetic", "r", seed=1, batch_size=10, drop_last=True, output="torch")
        )
    assert [len(b) for b in batches] == [10] * 10
    assert isinstance(batches[0].images, torch.Tensor) and batches[0].images.dtype == torch.uint8
    assert batches[0].indices.dtype == torch.int64


@pytest.mark.parametrize("cut_after", [10_001, 40_001])
@pytest.mark.parametrize("world", [1, 2])
def test_a_connection_cut_mid_stream_resumes_without_loss_or_duplicates(
    stream_server, tcp_proxy, cut_after, world
):
    proxy = tcp_proxy(upstream(stream_server.url), cut_after=cut_after)
    with Client(proxy.url, retry=FAST) as client:
        batches = list(
            client.stream("synthetic", "r", seed=9, batch_size=7, rank=world - 1, world_size=world)
        )
    assert proxy.cuts == 1
    got = [int(i) for b in batches for i in b.indices]
    assert got == expected_indices(9, 0, world - 1, world)  # no loss, no duplicate, in order
    for batch in batches:
        check_batch(batch)
    requests = stream_server.state["requests"]
    assert len(requests) == 2
    received_before_cut = int(requests[1]["start"]) // world
    assert received_before_cut > 0 and received_before_cut % 7 == 0  # whole frames only
    assert {r["rank"] for r in requests} == {str(world - 1)}
    # the reconnect names the digest the first frames carried, not the mutable name
    assert [r["recipe"] for r in requests] == ["r", "sha256:test"]


def test_the_async_stream_resumes_too(stream_server, tcp_proxy):
    proxy = tcp_proxy(upstream(stream_server.url), cut_after=9_000)

    async def main() -> list[int]:
        async with AsyncClient(proxy.url, retry=FAST) as client:
            return [
                int(i)
                async for b in client.stream("synthetic", "r", seed=2, batch_size=5)
                for i in b.indices
            ]

    assert asyncio.run(main()) == expected_indices(2, 0, 0, 1)
    assert proxy.cuts == 1


def test_resuming_by_hand_with_start(stream_server):
    with Client(stream_server.url) as client:
        first = next(iter(client.stream("synthetic", "r", seed=4, batch_size=6, world_size=2)))
        rest = client.stream("synthetic", "r", seed=4, batch_size=6, world_size=2, start=6 * 2)
        got = [int(i) for i in first.indices] + [int(i) for b in rest for i in b.indices]
    assert got == expected_indices(4, 0, 0, 2)


def test_an_unknown_dataset_is_not_retried(stream_server):
    with Client(stream_server.url, retry=FAST) as client, pytest.raises(errors.DatasetNotFound):
        list(client.stream("nope", "r", seed=1))
    assert stream_server.state["requests"] == []


def test_a_stream_that_never_connects_gives_up_by_the_policy():
    client = Client("http://127.0.0.1:9", retry=FAST)
    with client, pytest.raises(errors.TransportError):
        list(client.stream("synthetic", "r", seed=1))


def test_bad_shards_are_refused():
    with Client("http://127.0.0.1:9") as client, pytest.raises(ValueError):
        list(client.stream("synthetic", "r", seed=1, rank=2, world_size=2))


def test_a_server_that_resumes_elsewhere_fails_loudly_instead_of_repeating(
    stream_server, tcp_proxy
):
    """The cursor checks each frame's epoch and position, not just counts: the
    'forgetful' dataset restarts at position 0 on reconnect, which would silently
    repeat the samples before the cut."""
    proxy = tcp_proxy(upstream(stream_server.url), cut_after=9_000)
    seen: list[int] = []
    out_of_step = pytest.raises(errors.StreamOutOfStep, match=r"expected epoch 0 position \d+")
    with Client(proxy.url, retry=FAST) as client, out_of_step:
        for batch in client.stream("forgetful", "r", seed=9, batch_size=7):
            seen += [int(i) for i in batch.indices]
    assert proxy.cuts == 1
    assert 0 < len(seen) == len(set(seen))  # what was yielded before the error is clean
    assert seen == expected_indices(9, 0, 0, 1)[: len(seen)]


def test_a_first_frame_at_the_wrong_position_is_refused(stream_server):
    out_of_step = pytest.raises(errors.StreamOutOfStep, match="position 14")
    with Client(stream_server.url, retry=FAST) as client, out_of_step:
        next(iter(client.stream("forgetful", "r", seed=1, batch_size=7, start=14)))
    assert len(stream_server.state["requests"]) == 1  # never retried
