"""``len()`` of the torch dataset counts exactly the batches the server streams to a rank
and worker: the server's own batching (augsvc.datasets.stream) is the reference."""

from __future__ import annotations

from augsvc_client.torch_data import batches_per_epoch, worker_shard
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc.datasets.stream import StreamRequest


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(0, 300),
    batch_size=st.integers(1, 40),
    drop_last=st.booleans(),
    world_size=st.integers(1, 5),
    workers=st.integers(0, 4),
    data=st.data(),
)
def test_len_is_the_number_of_batches_the_server_streams_to_a_rank(
    size, batch_size, drop_last, world_size, workers, data
):
    """The server's own batching is the reference for len()."""
    rank = data.draw(st.integers(0, world_size - 1))
    streamed = 0
    for worker in range(max(workers, 1)):
        shard, shards = worker_shard(rank, world_size, worker, max(workers, 1))
        request = StreamRequest(0, batch_size=batch_size, rank=shard, world_size=shards,
                                drop_last=drop_last)  # fmt: skip
        streamed += len(request.batches(size))
    assert batches_per_epoch(size, batch_size, drop_last, rank, world_size, workers) == streamed
