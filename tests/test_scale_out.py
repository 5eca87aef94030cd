"""Scale-out and graceful shutdown with real processes.

One real redis-server and THREE real `augsvc serve` processes on 127.0.0.1 sharing a key
prefix, as replicas behind a Kubernetes Service would. The replicas agree on recipes and
byte-identical results, a batch split across replicas equals one request, and SIGKILLing
one replica under load only fails the requests routed to it. Then the same processes are
shut down with SIGTERM while work is in flight: an augment request and a dataset stream
complete whole, new connections are refused, and the process exits 0 within the grace period.

The tests run in file order on one module-scoped cluster (three server starts in all):
the kill test takes replica C, the SIGTERM tests take B and then A.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import signal
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import safetensors.numpy
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from augsvc.cli.serve import GRACEFUL_SHUTDOWN_S
from augsvc.codec import read_frame
from augsvc.datasets import epoch_order
from tests.imagegen import jpeg_bytes

SAFETENSORS = "application/x-safetensors"
RECIPE = {
    "ops": [
        {"op": "rotate", "degrees": 20},
        {"op": "random_resized_crop", "size": [32, 32], "scale": [0.5, 1.0]},
        {"op": "hflip"},
        {"op": "color_jitter", "brightness": 0.3, "saturation": 0.3},
    ]
}
# ~1.5-2 s for 48 images of 480x640 on a 2-core CPU: long enough to SIGTERM mid-request.
SLOW_RECIPE = {"ops": [{"op": "rotate", "degrees": 30}, {"op": "resize", "size": [480, 640]}]}
SEED, OFFSET = 1234, 7
BATCH = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (6, 3, 40, 50), np.uint8))
JPEGS = [jpeg_bytes(64, 48, seed=i) for i in range(5)]
N_STREAM_IMAGES = 48
STREAM_BATCH = 4


def _data_root(base: Path) -> Path:
    root = base / "train"
    for i in range(N_STREAM_IMAGES):
        folder = root / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:04d}.jpg").write_bytes(jpeg_bytes(64, 48, seed=100 + i))
    return root


@pytest.fixture(scope="module")
def cluster(start_augsvc, redis_server, tmp_path_factory) -> Iterator[list]:
    """Replicas A, B, C: one Redis, one unique prefix, three processes and ports."""
    data_root = _data_root(tmp_path_factory.mktemp("scale-out-data"))
    env = {
        "AUGSVC_REDIS_URL": redis_server.url,
        "AUGSVC_REDIS_PREFIX": f"scale-{uuid.uuid4().hex[:12]}",
        "AUGSVC_DATA_ROOTS": str(data_root),
        "AUGSVC_ENGINE_THREADS": "1",
    }
    servers = [start_augsvc(**env) for _ in range(3)]
    assert len({s.url for s in servers}) == 3
    with servers[0].client() as a:  # everything is written through A only
        assert a.put("/v1/recipes/scale", json=RECIPE).status_code == 201
        assert a.put("/v1/recipes/slow", json=SLOW_RECIPE).status_code == 201
        stream_recipe = {"ops": [{"op": "random_resized_crop", "size": 32}, {"op": "hflip"}]}
        assert a.put("/v1/recipes/stream", json=stream_recipe).status_code == 201
        r = a.put("/v1/datasets/shutdown", json={"kind": "folder", "path": str(data_root)})
        assert r.status_code == 201, r.text
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def _alive(server):
    assert server.running, f"{server.name} is not running (tests in this file run in order)"
    return server


def augment_tensors(client: httpx.Client, batch: torch.Tensor, offset: int, recipe="scale"):
    return client.post(
        "/v1/augment",
        params={"recipe": recipe, "seed": SEED, "offset": offset},
        content=save_safetensors({"images": batch.contiguous()}),
        headers={"Content-Type": SAFETENSORS, "Accept": SAFETENSORS},
    )


def augment_zip(client: httpx.Client, jpegs: list[bytes], offset: int) -> httpx.Response:
    files = [("image", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(jpegs)]
    return client.post(
        "/v1/augment",
        params={"recipe": "scale", "seed": SEED, "offset": offset},
        files=files,
        headers={"Accept": "application/zip"},
    )


def zip_entries(body: bytes) -> list[bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return [archive.read(name) for name in sorted(archive.namelist())]


def metric(server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


# --- scale-out ------------------------------------------------------------------------------


def test_recipe_written_through_one_replica_is_served_by_the_others(cluster):
    a, b, c = (s.client() for s in map(_alive, cluster))
    with a, b, c:
        written = a.get("/v1/recipes/scale")
        assert written.status_code == 200
        for other in (b, c):
            got = other.get("/v1/recipes/scale")
            assert got.status_code == 200
            assert got.json() == written.json()
            assert got.headers["ETag"] == written.headers["ETag"]
        again = c.put("/v1/recipes/scale", json=RECIPE)  # same content through C: same version
        assert again.status_code == 200
        assert again.json()["version"] == written.json()["version"]
        assert again.json()["digest"] == written.json()["digest"]

        # A new version written through A is what `name` means on B and C from then on.
        v1 = a.put("/v1/recipes/moving", json=RECIPE).json()
        assert augment_tensors(b, BATCH, 0, "moving").headers["X-Augsvc-Recipe"] == "moving@1"
        v2 = a.put("/v1/recipes/moving", json={"ops": [*RECIPE["ops"], {"op": "vflip"}]})
        assert v2.status_code == 201 and v2.json()["version"] == v1["version"] + 1
        for other in (b, c):
            served = augment_tensors(other, BATCH, 0, "moving")
            assert served.status_code == 200, served.text
            assert served.headers["X-Augsvc-Recipe"] == "moving@2"
            assert served.headers["X-Augsvc-Recipe-Digest"] == v2.json()["digest"]


def test_the_same_request_gives_identical_bytes_on_every_replica(cluster):
    clients = [s.client() for s in map(_alive, cluster)]
    try:
        digest = clients[0].get("/v1/recipes/scale").json()["digest"]
        tensors = [augment_tensors(c, BATCH, OFFSET) for c in clients]
        zips = [augment_zip(c, JPEGS, OFFSET) for c in clients]
        by_digest = augment_tensors(clients[2], BATCH, OFFSET, recipe=digest)
    finally:
        for c in clients:
            c.close()
    for answers in (tensors, zips):
        assert [r.status_code for r in answers] == [200] * 3, answers[0].text
        assert answers[0].content == answers[1].content == answers[2].content
        assert {r.headers["X-Augsvc-Recipe-Digest"] for r in answers} == {digest}
    assert by_digest.content == tensors[0].content
    images = load_safetensors(tensors[0].content)["images"]
    assert images.shape == (6, 3, 32, 32) and images.dtype == torch.uint8
    assert len(zip_entries(zips[0].content)) == len(JPEGS)


def test_a_batch_split_across_replicas_equals_one_request(cluster):
    a, b, c = (s.client() for s in map(_alive, cluster))
    with a, b, c:
        whole = load_safetensors(augment_tensors(a, BATCH, 0).content)
        head = load_safetensors(augment_tensors(b, BATCH[:4], 0).content)
        tail = load_safetensors(augment_tensors(c, BATCH[4:], 4).content)
        whole_zip = zip_entries(augment_zip(a, JPEGS, 0).content)
        split_zip = zip_entries(augment_zip(c, JPEGS[:3], 0).content)
        split_zip += zip_entries(augment_zip(b, JPEGS[3:], 3).content)
    assert set(whole) == set(head) == set(tail)
    for name in whole:  # images, sample keys and every per-sample parameter
        assert torch.equal(whole[name], torch.cat([head[name], tail[name]])), name
    assert whole["keys"].tolist() == list(range(6))
    assert whole_zip == split_zip


def test_killing_one_replica_under_load_leaves_the_others_serving(cluster):
    replicas = list(map(_alive, cluster))
    victim = replicas[2]
    with replicas[0].client() as a:
        reference = augment_tensors(a, BATCH, OFFSET)
    assert reference.status_code == 200
    images_before = [metric(s, "augsvc_images_augmented_total") for s in replicas[:2]]

    counter = itertools.count()
    results: list[tuple[int, float, object]] = []  # (replica, started at, status+body | error)
    lock = threading.Lock()
    killed_at = [float("inf")]
    deadline = time.monotonic() + 6.0

    def worker() -> None:
        clients = [httpx.Client(base_url=s.url, timeout=10) for s in replicas]
        try:
            while time.monotonic() < deadline:
                n = next(counter)
                if n >= 240:
                    return
                target = n % 3
                started = time.monotonic()
                try:
                    r = augment_tensors(clients[target], BATCH, OFFSET)
                    outcome: object = (r.status_code, r.content)
                except httpx.HTTPError as exc:
                    outcome = exc
                with lock:
                    results.append((target, started, outcome))
                if target == 2 and started > killed_at[0] + 0.5:
                    time.sleep(0.01)  # the victim refuses at once; do not spin
        finally:
            for c in clients:
                c.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    while len(results) < 24 and time.monotonic() < deadline - 3:
        time.sleep(0.02)
    killed_at[0] = time.monotonic()
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait(timeout=10)
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)

    survivors = [(i, s, o) for i, s, o in results if i != 2]
    on_victim = [(s, o) for i, s, o in results if i == 2]
    assert survivors and on_victim
    for _, _, outcome in survivors:  # every request to a survivor: 200, reference bytes
        assert not isinstance(outcome, Exception), repr(outcome)
        assert outcome[0] == 200
        assert outcome[1] == reference.content
    after_kill = [s for _, s, _ in survivors if s > killed_at[0]]
    assert len(after_kill) >= 6, "the survivors were not under load after the kill"
    failures = [o for _, o in on_victim if isinstance(o, Exception)]
    assert failures, "no request reached the killed replica after the kill"
    assert all(isinstance(f, httpx.TransportError) for f in failures), failures
    for _, outcome in on_victim:
        if not isinstance(outcome, Exception):  # served before the kill: the same bytes
            assert outcome == (200, reference.content)
    assert all(isinstance(o, Exception) for s, o in on_victim if s > killed_at[0] + 0.2)

    for server, before in zip(replicas[:2], images_before, strict=True):
        served = sum(1 for i, _, _ in survivors if server is replicas[i])
        augmented = metric(server, "augsvc_images_augmented_total")
        assert augmented > 0
        assert augmented - before == served * len(BATCH)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{victim.url}/healthz", timeout=2)


# --- graceful shutdown ----------------------------------------------------------------------


def _wait_for_shutdown_start(server, timeout_s: float = 10.0) -> None:
    """uvicorn logs "Shutting down" just before it closes the listening socket."""
    deadline = time.monotonic() + timeout_s
    while "Shutting down" not in server.stderr_tail(100_000):
        assert time.monotonic() < deadline, "no 'Shutting down' after SIGTERM"
        time.sleep(0.01)
    time.sleep(0.05)


def _assert_new_connections_turned_away(server) -> None:
    try:
        r = httpx.get(f"{server.url}/healthz", timeout=5)
    except httpx.TransportError:
        return  # refused (or reset): the socket no longer listens
    assert r.status_code == 503, f"a new connection after SIGTERM got {r.status_code}"


def _assert_exits_zero_within_grace(server, signalled_at: float) -> None:
    try:
        code = server.process.wait(timeout=GRACEFUL_SHUTDOWN_S + 10)
    except Exception:
        pytest.fail(f"{server.name} still running {GRACEFUL_SHUTDOWN_S + 10} s after SIGTERM")
    took = time.monotonic() - signalled_at
    assert took <= GRACEFUL_SHUTDOWN_S + 5, took
    assert code == 0, f"exit code {code} after a graceful shutdown:\n{server.stderr_tail(1500)}"


def test_sigterm_lets_an_inflight_augment_request_complete(cluster):
    server = _alive(cluster[1])
    batch = torch.from_numpy(np.random.default_rng(8).integers(0, 256, (48, 3, 480, 640), np.uint8))
    answer: dict[str, object] = {}

    def request() -> None:
        try:
            with server.client() as c:
                answer["response"] = augment_tensors(c, batch, 0, recipe="slow")
        except Exception as exc:  # a reset or a truncated body lands here
            answer["error"] = exc

    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while metric(server, "augsvc_engine_jobs_running") != 1:
        assert thread.is_alive() and time.monotonic() < deadline, answer
        time.sleep(0.01)
    signalled_at = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)
    _wait_for_shutdown_start(server)
    _assert_new_connections_turned_away(server)
    thread.join(timeout=GRACEFUL_SHUTDOWN_S + 10)

    assert "error" not in answer, repr(answer.get("error"))
    response = answer["response"]
    assert isinstance(response, httpx.Response)
    assert len(response.content) == int(response.headers["content-length"])
    if response.status_code == 200:  # finished: the whole batch
        images = load_safetensors(response.content)["images"]
        assert images.shape == (48, 3, 480, 640) and images.dtype == torch.uint8
    else:  # or refused cleanly
        assert response.headers["content-type"] == "application/problem+json", response.text
        assert response.json()["status"] == response.status_code
    assert response.status_code == 200, response.text  # uvicorn drains: it should finish
    _assert_exits_zero_within_grace(server, signalled_at)


def test_sigterm_lets_a_stream_in_progress_end_cleanly(cluster):
    server = _alive(cluster[0])
    first_frame = threading.Event()
    got: dict[str, object] = {"frames": [], "leftover": b""}

    def read_stream() -> None:
        query = {"recipe": "stream", "seed": 3, "batch_size": STREAM_BATCH}
        buf = bytearray()
        try:
            with server.client() as c, c.stream("GET", "/v1/datasets/shutdown/stream",
                                                params=query) as r:  # fmt: skip
                got["status"] = r.status_code
                for chunk in r.iter_raw():
                    buf += chunk
                    while (frame := read_frame(buf)) is not None:
                        blob, used = frame
                        del buf[:used]
                        got["frames"].append(blob)  # type: ignore[union-attr]
                        first_frame.set()
                        time.sleep(0.2)  # a trainer's step: the stream outlives the SIGTERM
            got["eof"] = True
        except Exception as exc:
            got["error"] = exc
        finally:
            got["leftover"] = bytes(buf)
            first_frame.set()

    thread = threading.Thread(target=read_stream, daemon=True)
    thread.start()
    assert first_frame.wait(30)
    assert "error" not in got, repr(got.get("error"))
    signalled_at = time.monotonic()
    os.kill(server.process.pid, signal.SIGTERM)
    _wait_for_shutdown_start(server)
    assert thread.is_alive(), "the stream ended before the SIGTERM; make it longer"
    _assert_new_connections_turned_away(server)
    thread.join(timeout=GRACEFUL_SHUTDOWN_S + 10)

    assert got.get("status") == 200
    assert "error" not in got, repr(got.get("error"))  # e.g. an incomplete chunked body
    assert got.get("eof") and got["leftover"] == b"", "the stream ended inside a frame"
    *data, last = got["frames"]  # type: ignore[misc]
    # Whole frames, then a 503 frame telling the client to resume elsewhere: the
    # stream ends at a frame boundary instead of being cut when the grace period ends.
    meta = json.loads(last[8 : 8 + int.from_bytes(last[:8], "little")])["__metadata__"]
    assert meta["error"] == "unavailable" and "shutting down" in meta["detail"]
    indices: list[int] = []
    for blob in data:
        tensors = safetensors.numpy.load(blob)
        assert tensors["images"].shape[1:] == (3, 32, 32)
        indices += tensors["indices"].tolist()
    assert 0 < len(indices) < N_STREAM_IMAGES
    order = epoch_order(N_STREAM_IMAGES, 3, 0)
    assert indices == order[: len(indices)].tolist()  # so resuming at m is exact
    assert f"position {len(indices)}" in meta["detail"]
    _assert_exits_zero_within_grace(server, signalled_at)
