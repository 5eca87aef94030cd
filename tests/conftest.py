"""Shared fixtures: an asyncio runner, real redis-servers and real `augsvc serve` processes.

Tests use real parts (see DESIGN.md, Conventions): no Redis mocks. Each test gets its own
key prefix instead of a FLUSHALL, so tests never depend on each other's leftovers.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

# --- asyncio -----------------------------------------------------------------------------


@pytest.fixture
def aio() -> Iterator[asyncio.Runner]:
    """One event loop per test; ``aio.run(coro)`` as often as needed within the test.

    Async resources (Redis connections) are bound to the loop they were first used on,
    so a fixture that creates them uses the same runner as the test.
    """
    with asyncio.Runner() as runner:
        yield runner


# --- redis-server ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A throwaway redis-server on 127.0.0.1 without persistence; restartable on its port."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start (or restart, on the same port) and return once it answers PING."""
        if self._process is not None:
            return
        log = (self.workdir / "redis.log").open("ab")
        self._process = subprocess.Popen(
            [self.executable, "--save", "", "--appendonly", "no", "--port", str(self.port),
             "--bind", "127.0.0.1", "--daemonize", "no", "--dir", str(self.workdir)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout_s
        while not _answers_ping(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                output = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on {self.port}:\n{output}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (its data is gone: nothing is persisted)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


def _start_redis(executable: str, workdir: Path) -> RedisServer:
    for attempt in range(3):  # the free port can be taken before redis-server binds it
        server = RedisServer(executable, workdir)
        try:
            server.start()
            return server
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server not on PATH (`make redis` installs it)")
    server = _start_redis(executable, tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def start_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], RedisServer]]:
    """A factory of private redis-servers, for tests that stop and restart theirs."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server not on PATH (`make redis` installs it)")
    started: list[RedisServer] = []

    def start() -> RedisServer:
        server = _start_redis(executable, tmp_path_factory.mktemp("redis-private"))
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


# --- images -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def black_png_36mp(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 6000x6000 all-black RGB PNG at compress_level 9: about 100 KB that decodes to
    108 MB. Encoded once per session (it takes a while) and kept in a temporary file."""
    from PIL import Image

    path = tmp_path_factory.mktemp("bombs") / "black-6000x6000.png"
    Image.new("RGB", (6000, 6000)).save(path, "PNG", compress_level=9)
    return path.read_bytes()


# --- augsvc serve --------------------------------------------------------------------------

_LISTENING = re.compile(r"augsvc listening on (http://\S+)")
_LIVE_SERVERS: list[AugsvcServer] = []


class AugsvcServer:
    """A real `augsvc serve` (uvicorn) subprocess on 127.0.0.1.

    It is started on port 0 and the URL is read from the line the server prints once its
    socket listens, so there is no race for a free port. It runs in its own process group;
    stdout and stderr go to files whose tail is attached to any failing test's report.
    """

    def __init__(self, env: dict[str, str], workdir: Path, name: str) -> None:
        self.env = env
        self.name = name
        self.stdout_path = workdir / f"{name}.stdout.log"
        self.stderr_path = workdir / f"{name}.stderr.log"
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AUGSVC_")}
        environment.update(self.env)
        environment.setdefault("AUGSVC_DEVICE", "cpu")
        environment["PYTHONUNBUFFERED"] = "1"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "augsvc.cli", "serve", "--host", "127.0.0.1",
                 "--port", "0", "--log-level", "info"],
                stdout=out, stderr=err, env=environment, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not self.url:
            match = _LISTENING.search(self.stdout_path.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"augsvc serve did not start:\n{self.stderr_tail()}")
            time.sleep(0.05)
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"augsvc serve never became healthy:\n{self.stderr_tail()}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stderr_tail(self, chars: int = 6000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the process group (graceful shutdown), SIGKILL after 15 s."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            self.process.wait()
        self.process = None

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def start_augsvc(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., AugsvcServer]]:
    """``start_augsvc(AUGSVC_MAX_IMAGES="4", ...)`` -> a started server, stopped at the end
    of the session (or earlier with ``server.stop()``). Settings are AUGSVC_* variables."""
    workdir = tmp_path_factory.mktemp("augsvc")
    started: list[AugsvcServer] = []

    def start(**env: str) -> AugsvcServer:
        server = AugsvcServer(env, workdir, f"server{len(started)}")
        server.start()
        started.append(server)
        _LIVE_SERVERS.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
            _LIVE_SERVERS.remove(server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach each live server's stderr to a failing test's report: the server-side
    traceback is usually what explains a client-side failure."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in _LIVE_SERVERS:
            report.sections.append((f"augsvc {server.name} stderr", server.stderr_tail()))
