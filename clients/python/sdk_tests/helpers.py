"""Helpers of the SDK's unit tests: loopback servers that speak parts of the augsvc
contract (problem bodies, the dataset stream over a synthetic dataset) and a TCP proxy
that can cut a connection. Fixtures in conftest.py wrap them; no augsvc is involved."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import safetensors.numpy


@dataclass
class RunningServer:
    url: str
    httpd: ThreadingHTTPServer
    state: dict = field(default_factory=dict)


def send_problem(handler: BaseHTTPRequestHandler, status: int, code: str, detail: str,
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
    body = json.dumps(
        {"type": f"urn:augsvc:problem:{code}", "title": code, "status": status,
         "detail": detail, "code": code}
    ).encode()  # fmt: skip
    handler.send_response(status)
    handler.send_header("Content-Type", "application/problem+json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


# --- the stream contract over a synthetic dataset --------------------------------------

STREAM_SIZE = 103  # not a multiple of any batch size or world size used in the tests


IMAGE_SHAPE = (3, 16, 20)


def sample_image(index: int) -> np.ndarray:
    """A uint8 image whose pixels encode ``index`` (so images can be checked too)."""
    image = np.empty(IMAGE_SHAPE, np.uint8)
    image[0] = index % 256
    image[1] = index // 256
    image[2] = 7
    return image


def sample_label(index: int) -> int:
    return index % 10


def epoch_order(seed: int, epoch: int, size: int = STREAM_SIZE) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(size)


def stream_frames(params: dict[str, str], size: int = STREAM_SIZE) -> Iterator[bytes]:
    seed, epoch = int(params["seed"]), int(params.get("epoch", 0))
    rank, world = int(params.get("rank", 0)), int(params.get("world_size", 1))
    start, batch_size = int(params.get("start", 0)), int(params.get("batch_size", 64))
    drop_last = params.get("drop_last", "false") == "true"
    order = epoch_order(seed, epoch, size)
    positions = list(range(start + rank, size, world))
    for b, first in enumerate(range(0, len(positions), batch_size)):
        chunk = positions[first : first + batch_size]
        if drop_last and len(chunk) < batch_size:
            return
        indices = order[chunk].astype(np.int64)
        blob = safetensors.numpy.save(
            {
                "images": np.stack([sample_image(int(i)) for i in indices]),
                "indices": indices,
                "labels": np.asarray([sample_label(int(i)) for i in indices], np.int64),
            },
            metadata={"epoch": str(epoch), "batch": str(b), "rank": str(rank),
                      "world_size": str(world), "start": str(start),
                      "position": str(chunk[0]), "digest": "sha256:test"},
        )  # fmt: skip
        yield len(blob).to_bytes(8, "little") + blob


class StreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked bodies, like uvicorn's StreamingResponse
    requests: list[dict[str, str]]  # set per server class

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        if parts[:2] != ["v1", "datasets"] or len(parts) != 4 or parts[3] != "stream":
            send_problem(self, 404, "not-found", f"no route {url.path}")
            return
        if parts[2] not in ("synthetic", "forgetful"):
            send_problem(self, 404, "dataset-not-found", f"no dataset {parts[2]!r}")
            return
        if parts[2] == "forgetful":  # a broken server: always restarts the epoch
            params = {**params, "start": "0"}
        type(self).requests.append(params)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-augsvc-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for data in stream_frames(params):
                # Split every frame in two chunks so clients must reassemble frames.
                for piece in (data[: len(data) // 2], data[len(data) // 2 :]):
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # a test cut the connection
            self.close_connection = True


# --- a TCP proxy that can cut a connection ---------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:port to ``upstream``; ``cut_after`` bytes of the first response
    it forwards, it closes both sides of that connection (once)."""

    def __init__(self, upstream: tuple[str, int], cut_after: int | None = None) -> None:
        self.upstream = upstream
        self.cut_after = cut_after
        self.cuts = 0
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(self.upstream)
            cut = self.cut_after if self.connections == 1 else None
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, cut), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, cut_after: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if cut_after is not None and sent + len(data) >= cut_after:
                    dst.sendall(data[: cut_after - sent])
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def proxies() -> Iterator[Callable[..., TcpProxy]]:
    """``start(upstream, cut_after=N)`` for a fixture to yield; closes every proxy after."""
    started: list[TcpProxy] = []

    def start(upstream: tuple[str, int], cut_after: int | None = None) -> TcpProxy:
        proxy = TcpProxy(upstream, cut_after)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.close()
