"""Fixtures of the SDK's unit tests: real loopback servers (no HTTP mocks), no augsvc.

* ``http_server(handler_class)``: any ``BaseHTTPRequestHandler`` served on 127.0.0.1 by a
  ``ThreadingHTTPServer`` in a thread (e.g. one that answers 503 twice, then 200).
* ``stream_server``: the dataset-stream contract over a synthetic dataset whose pixels
  and labels encode each sample's index (see helpers.py).
* ``tcp_proxy(upstream)``: forwards TCP to a server and can kill the first connection
  after N bytes of response, to drop a stream mid-frame.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .helpers import RunningServer, StreamHandler, TcpProxy, proxies


@pytest.fixture
def http_server() -> Iterator[Callable[[type[BaseHTTPRequestHandler]], RunningServer]]:
    started: list[ThreadingHTTPServer] = []

    def start(handler: type[BaseHTTPRequestHandler]) -> RunningServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        host, port = httpd.server_address[:2]
        return RunningServer(f"http://{host}:{port}", httpd)

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def stream_server(http_server) -> RunningServer:
    handler = type("Handler", (StreamHandler,), {"requests": []})
    server = http_server(handler)
    server.state["requests"] = handler.requests
    return server


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[..., TcpProxy]]:
    """``tcp_proxy(upstream, cut_after=N)``: a proxy that cuts the first response after N
    bytes."""
    yield from proxies()
