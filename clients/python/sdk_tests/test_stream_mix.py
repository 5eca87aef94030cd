"""A stream's mixing settings: sent as query parameters, refused when unknown, and sent
again on every reconnect (so the rest of the epoch is mixed the same way)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from augsvc_client import Client, RetryPolicy
from augsvc_client.request import mix_params
from augsvc_client.streaming import StreamCursor

MIX = {"mixup_alpha": 0.8, "cutmix_minmax": (0.2, 0.8), "correct_lam": False, "num_classes": 5}
SENT = {"mixup_alpha": "0.8", "cutmix_minmax": ["0.2", "0.8"], "correct_lam": "false",
        "num_classes": "5"}  # fmt: skip


def test_mix_settings_become_query_parameters():
    assert mix_params(MIX) == SENT
    assert mix_params(None) == {} and mix_params({"label_smoothing": None}) == {}
    with pytest.raises(ValueError, match=r"unknown mixing parameters.*'prob'"):
        mix_params({"prob": 0.5})  # timm's name is mix_prob in a stream query
    with pytest.raises(ValueError, match="unknown"):
        StreamCursor("d", "r", seed=1, mix={"alpha": 1})


def test_a_resumed_cursor_sends_the_same_mixing():
    cursor = StreamCursor("d", "r", seed=1, batch_size=4, mix=MIX)
    cursor.received = 8
    params = cursor.call().params
    assert params["start"] == "8"
    assert {k: params[k] for k in SENT} == SENT


def test_a_reconnect_mid_stream_resends_the_mixing(stream_server, tcp_proxy):
    parts = urlsplit(stream_server.url)
    proxy = tcp_proxy((parts.hostname, parts.port), cut_after=10_001)
    fast = RetryPolicy(attempts=3, base=0.01, cap=0.05, deadline=10.0)
    with Client(proxy.url, retry=fast) as client:
        batches = list(client.stream("synthetic", "r", seed=9, batch_size=7, mix=MIX))
    assert proxy.cuts == 1 and batches
    requests = stream_server.state["requests"]
    assert len(requests) == 2
    for r in requests:  # the fixture keeps the last value of a repeated parameter
        assert (r["mixup_alpha"], r["cutmix_minmax"], r["correct_lam"]) == ("0.8", "0.8", "false")
    assert batches[0].soft_targets is None  # this fixture's frames carry no mixing fields
