"""The SDK installed without its torch extra: asked for torch tensors it names the
command that adds them, before it sends anything.

torch is hidden from a real child interpreter by a ``sitecustomize`` on its
``PYTHONPATH`` whose import hook makes ``import torch`` raise ImportError, which is
what an installation without the extra sees; the test's own interpreter keeps torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

SDK_ROOT = Path(__file__).resolve().parents[1]

BLOCKER = '''
import sys


class NoTorch:
    """An installation without torch: every torch import fails as a missing module."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoTorch())
'''

#: Each call the child makes, and what it raised: ``output="torch"`` for augment (one
#: image, a stored or an inline recipe) and for a stream.
CHILD = """
import json, sys
import numpy as np
from augsvc_client import Client

try:
    import torch  # noqa: F401
    blocked = False
except ImportError:
    blocked = True
image = np.zeros((1, 3, 8, 8), np.uint8)
calls = {
    "augment": lambda c: c.augment(image, "flip", seed=1, output="torch"),
    "augment_inline": lambda c: c.augment(image, {"ops": []}, seed=1, output="torch"),
    "stream": lambda c: next(iter(c.stream("data", "flip", seed=1, output="torch"))),
}
raised = {}
with Client(sys.argv[1]) as client:
    for name, call in calls.items():
        try:
            call(client)
            raised[name] = None
        except Exception as exc:
            raised[name] = [type(exc).__name__, str(exc)]
print(json.dumps({"blocked": blocked, "raised": raised}))
"""


class Counting(BaseHTTPRequestHandler):
    """Counts requests; a test expects none."""

    seen: ClassVar[list[str]] = []

    def _any(self) -> None:
        Counting.seen.append(f"{self.command} {self.path}")
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _any

    def log_message(self, *args: object) -> None:
        pass


def run_without_torch(tmp_path: Path, url: str) -> dict:
    hidden = tmp_path / "no-torch"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)  # keeps a PYTHONPATH that brings the SDK's dependencies
    paths = [str(hidden), str(SDK_ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), url],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_output_torch_without_torch_names_the_extra_and_sends_nothing(tmp_path, http_server):
    server = http_server(Counting)
    Counting.seen = []
    result = run_without_torch(tmp_path, server.url)
    assert result["blocked"], "the import blocker did not hide torch"
    for name, raised in result["raised"].items():
        assert raised is not None, f"{name} with output='torch' succeeded without torch"
        kind, message = raised
        assert kind in ("ImportError", "ModuleNotFoundError"), (name, raised)
        assert "pip install 'augsvc-client[torch]'" in message, (name, message)
        assert "output='numpy'" in message, (name, message)
    assert Counting.seen == [], "a request went out before torch was found missing"
