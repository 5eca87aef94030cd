"""Retry rules: pure functions, then real loopback servers that answer 503."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import numpy as np
import pytest
import safetensors.numpy
from augsvc_client import AsyncClient, Client, RetryPolicy, errors
from augsvc_client.retry import RetryState, backoff, is_retryable, retry_after

from .helpers import send_problem

# --- pure functions ----------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_cap():
    rng = random.Random(0)
    for attempt in range(12):
        ceiling = min(5.0, 0.1 * 2**attempt)
        draws = [backoff(attempt, 0.1, 5.0, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > 0.8 * ceiling  # it uses the whole range
    assert backoff(10_000, 0.1, 5.0, rng) <= 5.0  # no overflow on absurd attempts
    assert backoff(3, 0.0, 5.0, rng) == 0.0


def test_retry_after_seconds_dates_and_garbage():
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after": " 0 "}) == 0.0
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 10, usegmt=True)
    assert retry_after({"Retry-After": date}, now=now) == pytest.approx(10.0)
    assert retry_after({"Retry-After": email.utils.formatdate(now - 60, usegmt=True)}, now=now) == 0
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({"Retry-After": "-3"}) is None
    assert retry_after({}) is None


@pytest.mark.parametrize(
    ("failure", "idempotent", "expected"),
    [
        (503, True, True),
        (429, True, True),
        (503, False, False),
        (500, True, False),
        (404, True, False),
        (errors.TransportError("refused"), True, True),
        (errors.TransportError("refused"), False, False),
        (errors.Overloaded("busy"), True, True),
        (errors.StoreUnavailable("down"), True, True),
        (errors.RateLimited("slow down"), True, True),
        (errors.RecipeNotFound("no"), True, False),
        (ValueError("bug"), True, False),
    ],
)
def test_is_retryable(failure, idempotent, expected):
    assert is_retryable(failure, idempotent) is expected


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_state_spends_attempts_then_raises_the_last_error():
    state = RetryState(RetryPolicy(attempts=3, base=0.1, cap=1.0), True, random.Random(1))
    busy = errors.Overloaded("busy")
    assert 0 <= state.delay(busy) <= 0.1
    assert 0 <= state.delay(busy) <= 0.2
    with pytest.raises(errors.Overloaded):
        state.delay(busy)


def test_state_never_retries_a_non_idempotent_call():
    state = RetryState(RetryPolicy(), idempotent=False)
    with pytest.raises(errors.Overloaded):
        state.delay(errors.Overloaded("busy"))


def test_state_honours_retry_after_and_the_deadline():
    clock = FakeClock()
    policy = RetryPolicy(attempts=10, base=0.01, cap=0.01, deadline=5.0)
    state = RetryState(policy, True, random.Random(0), clock=clock)
    assert state.delay(errors.Overloaded("x", headers={"Retry-After": "2"})) == 2.0
    clock.now = 2.5
    with pytest.raises(errors.DeadlineExceeded) as info:
        state.delay(errors.Overloaded("x", headers={"Retry-After": "3"}))
    assert isinstance(info.value.last_error, errors.Overloaded)
    assert info.value.__cause__ is info.value.last_error
    state.reset()  # progress (a stream frame) restarts both budgets
    assert state.attempt == 0
    assert state.delay(errors.Overloaded("x", headers={"Retry-After": "3"})) == 3.0


def test_policy_validation():
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(deadline=0)


# --- real servers on loopback ------------------------------------------------------------

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05, deadline=10.0)


def batch_body(n: int, offset: int) -> bytes:
    return safetensors.numpy.save(
        {
            "images": np.full((n, 1, 2, 2), 9, np.uint8),
            "keys": np.arange(offset, offset + n, dtype=np.int64),
        }
    )


def flaky_handler(failures: int, retry_after_s: str = "0"):
    """Answers ``failures`` 503s (problem+json, Retry-After), then 200s; counts requests."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        count = 0
        bodies: ClassVar[list[bytes]] = []

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            type(self).bodies.append(self.rfile.read(length))
            type(self).count += 1
            if type(self).count <= failures:
                send_problem(self, 503, "overloaded", "busy", {"Retry-After": retry_after_s})
                return
            if self.path.startswith("/v1/augment"):
                body = batch_body(2, 5)
                content_type = "application/x-safetensors"
            else:
                body = json.dumps({"ops": [{"name": "hflip"}]}).encode()
                content_type = "application/json"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Augsvc-Seed", "7")
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

    return Handler


def test_a_get_is_retried_through_two_503s(http_server):
    server = http_server(flaky_handler(2))
    with Client(server.url, retry=FAST) as client:
        assert client.ops() == [{"name": "hflip"}]
    assert server.httpd.RequestHandlerClass.count == 3


def test_a_seeded_augment_is_retried_and_decoded(http_server):
    server = http_server(flaky_handler(2))
    images = np.zeros((2, 1, 2, 2), np.uint8)
    with Client(server.url, retry=FAST) as client:
        batch = client.augment(images, "r", seed=7, offset=5)
    handler = server.httpd.RequestHandlerClass
    assert handler.count == 3
    # every attempt sent the whole safetensors body again (it is streamed in slices)
    assert len(set(handler.bodies)) == 1
    np.testing.assert_array_equal(safetensors.numpy.load(handler.bodies[0])["images"], images)
    assert batch.keys.tolist() == [5, 6]
    assert batch.seed == 7
    assert (batch.images == 9).all()


def test_an_unseeded_augment_is_not_retried(http_server):
    server = http_server(flaky_handler(2))
    with Client(server.url, retry=FAST) as client, pytest.raises(errors.Overloaded):
        client.augment(np.zeros((1, 1, 2, 2), np.uint8), "r")
    assert server.httpd.RequestHandlerClass.count == 1


def test_attempts_are_bounded(http_server):
    server = http_server(flaky_handler(100))
    client = Client(server.url, retry=RetryPolicy(attempts=3, base=0.0))
    with client, pytest.raises(errors.Overloaded) as info:
        client.ops()
    assert info.value.headers["retry-after"] == "0"
    assert server.httpd.RequestHandlerClass.count == 3


def test_retry_after_is_honoured(http_server):
    server = http_server(flaky_handler(1, retry_after_s="1"))
    started = time.monotonic()
    with Client(server.url, retry=FAST) as client:
        client.ops()
    assert time.monotonic() - started >= 1.0
    assert server.httpd.RequestHandlerClass.count == 2


def test_a_retry_after_past_the_deadline_gives_up_at_once(http_server):
    server = http_server(flaky_handler(100, retry_after_s="30"))
    started = time.monotonic()
    client = Client(server.url, retry=RetryPolicy(deadline=2.0))
    with client, pytest.raises(errors.DeadlineExceeded):
        client.ops()
    assert time.monotonic() - started < 1.5
    assert server.httpd.RequestHandlerClass.count == 1


def test_connection_refused_is_a_transport_error_after_the_attempts():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", retry=FAST)
    with client, pytest.raises(errors.TransportError) as info:
        client.ops()
    assert info.value.__cause__ is not None


def test_the_async_client_retries_the_same_way(http_server):
    server = http_server(flaky_handler(2))

    async def main() -> list:
        async with AsyncClient(server.url, retry=FAST) as client:
            return await client.ops()

    assert asyncio.run(main()) == [{"name": "hflip"}]
    assert server.httpd.RequestHandlerClass.count == 3
