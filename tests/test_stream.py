"""Streaming augmented batches from a registered dataset, against a real server."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from augsvc.datasets import epoch_order
from tests.imagegen import jpeg_bytes, png_bytes
from tests.stream_frames import frames

N_IMAGES = 240
SEED = 17
RECIPE = {
    "ops": [
        {"op": "rotate", "degrees": 15},
        {"op": "random_resized_crop", "size": 24, "scale": [0.5, 1.0]},
        {"op": "hflip"},
        {"op": "color_jitter", "brightness": 0.3, "hue": 0.05},
    ]
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for i in range(N_IMAGES):
        folder = root / "train" / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        if i % 4 == 0:
            (folder / f"{i:04d}.png").write_bytes(png_bytes(40, 30, seed=i))
        else:
            (folder / f"{i:04d}.jpg").write_bytes(jpeg_bytes(40, 30, seed=i))
    (root / "outside").mkdir()
    return root / "train"


@pytest.fixture(scope="module")
def server(start_augsvc, data_root):
    srv = start_augsvc(AUGSVC_DATA_ROOTS=str(data_root.parent), AUGSVC_STREAM_PREFETCH="2")
    with srv.client() as c:
        assert c.put("/v1/recipes/stream-test", json=RECIPE).status_code == 201
        big = {"ops": [{"op": "resize", "size": [384, 384]}]}
        assert c.put("/v1/recipes/big", json=big).status_code == 201
        r = c.put("/v1/datasets/train", json={"kind": "folder", "path": str(data_root)})
        assert r.status_code == 201, r.text
        assert r.json()["size"] == N_IMAGES
        assert r.json()["classes"] == ["class0", "class1", "class2"]
    return srv


def stream(server, **params) -> list[tuple[dict, dict]]:
    query = {"recipe": "stream-test", "seed": SEED, "batch_size": 16, **params}
    with server.client() as c, c.stream("GET", "/v1/datasets/train/stream", params=query) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"] == "application/x-augsvc-stream"
        return list(frames(r))


def by_index(got: list[tuple[dict, dict]]) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for tensors, _ in got:
        for idx, image in zip(tensors["indices"].tolist(), tensors["images"], strict=True):
            assert idx not in out, f"index {idx} streamed twice"
            out[idx] = image.tobytes()
    return out


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_together_stream_every_index_exactly_once(server, world_size):
    seen: list[int] = []
    for rank in range(world_size):
        for tensors, meta in stream(server, rank=rank, world_size=world_size):
            assert tensors["images"].dtype == np.uint8
            assert tensors["images"].shape[1:] == (3, 24, 24)
            assert len(tensors["labels"]) == len(tensors["indices"])
            assert meta["rank"] == str(rank) and meta["epoch"] == "0"
            seen += tensors["indices"].tolist()
    assert sorted(seen) == list(range(N_IMAGES))


def test_labels_follow_the_class_folders(server):
    """Indices enumerate the sorted file list, class0's 80 files first (ImageFolder)."""
    for tensors, _ in stream(server):
        assert (tensors["labels"] == tensors["indices"] // (N_IMAGES // 3)).all()


def test_resume_at_k_is_the_rest_of_an_uninterrupted_run(server):
    full = by_index(stream(server, rank=0, world_size=1))
    order = epoch_order(N_IMAGES, SEED, 0)
    k = 70
    remaining = set(order[k:].tolist())
    same_world = by_index(stream(server, rank=0, world_size=2, start=k)
                          + stream(server, rank=1, world_size=2, start=k))  # fmt: skip
    regrown = by_index([f for r in range(3) for f in stream(server, rank=r, world_size=3, start=k)])
    for resumed in (same_world, regrown):
        assert set(resumed) == remaining
        assert all(resumed[i] == full[i] for i in remaining)  # byte-identical


def test_epochs_differ_and_repeat(server):
    e0 = stream(server, epoch=0)
    e1 = stream(server, epoch=1)
    order0 = np.concatenate([t["indices"] for t, _ in e0])
    order1 = np.concatenate([t["indices"] for t, _ in e1])
    assert not np.array_equal(order0, order1)
    a0, a1 = by_index(e0), by_index(e1)
    assert sum(a0[i] != a1[i] for i in a0) > 0.9 * N_IMAGES  # augmented afresh
    again = stream(server, epoch=0)
    assert all(
        np.array_equal(x["images"], y["images"]) and x_meta == y_meta
        for (x, x_meta), (y, y_meta) in zip(e0, again, strict=True)
    )


def test_drop_last_and_frame_metadata(server):
    got = stream(server, batch_size=50, drop_last=True)
    assert [len(t["indices"]) for t, _ in got] == [50, 50, 50, 50]
    assert [m["position"] for _, m in got] == ["0", "50", "100", "150"]
    assert {m["digest"] for _, m in got} == {got[0][1]["digest"]}
    assert got[0][1]["digest"].startswith("sha256:")


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def _metric(server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_slow_reader_keeps_server_memory_bounded(server):
    """384x384 frames of 8 images are 3.5 MB, the epoch 106 MB; a stalled reader must not
    let the server render the epoch ahead into memory.

    RSS is compared with its level after one whole epoch read at full speed: that run
    creates the plan, the render threads and their malloc arenas (the server keeps freed
    blocks for reuse), so what RSS adds afterwards is what the stalled stream holds."""
    pid = server.process.pid
    query = {"recipe": "big", "seed": 1, "batch_size": 8}
    frame_bytes = 8 * 3 * 384 * 384
    epoch_bytes = N_IMAGES * 3 * 384 * 384
    with server.client() as c, c.stream("GET", "/v1/datasets/train/stream", params=query) as r:
        assert sum(1 for _ in frames(r)) * frame_bytes == epoch_bytes
    rss_warm = _rss_kib(pid)
    rendered_before = _metric(server, "augsvc_stream_frames_total")
    with server.client() as c, c.stream("GET", "/v1/datasets/train/stream", params=query) as r:
        reader = frames(r)
        next(reader)
        time.sleep(3)  # stall: the producer fills its queue and the socket, then waits
        rss_early = _rss_kib(pid)
        ahead_early = _metric(server, "augsvc_stream_frames_total") - rendered_before
        for _ in range(8):
            next(reader)
        time.sleep(3)
        rss_late = _rss_kib(pid)
        rendered = _metric(server, "augsvc_stream_frames_total") - rendered_before
        buffered = _metric(server, "augsvc_stream_frames_buffered")
    assert buffered <= 2  # the prefetch setting
    # read 9; at most prefetch + 1 in flight + what the loopback socket buffers hold
    assert ahead_early <= 1 + 3 + 16 * 2**20 // frame_bytes + 2
    assert rendered - 9 <= 3 + 16 * 2**20 // frame_bytes + 2 < 30 - 9
    grown = (max(rss_early, rss_late) - rss_warm) * 1024
    assert grown < epoch_bytes // 3, (rss_warm, rss_early, rss_late)


def test_client_disconnect_stops_the_work(server):
    query = {"recipe": "big", "seed": 2, "batch_size": 4}  # 60 frames
    before = _metric(server, "augsvc_stream_frames_total")
    with server.client() as c, c.stream("GET", "/v1/datasets/train/stream", params=query) as r:
        next(frames(r))
    deadline = time.monotonic() + 10
    while _metric(server, "augsvc_streams_active") > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _metric(server, "augsvc_streams_active") == 0
    settled = _metric(server, "augsvc_stream_frames_total")
    time.sleep(1.0)
    assert _metric(server, "augsvc_stream_frames_total") == settled
    assert settled - before < 20  # far from the 60 frames of the epoch


@pytest.mark.parametrize("path", ["../outside", "/etc", "/", "train/../../outside", "\u0000x"])
def test_path_escapes_are_refused(server, path):
    with server.client() as c:
        r = c.put("/v1/datasets/evil", json={"kind": "folder", "path": path})
        assert r.status_code in (403, 422), r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        if r.status_code == 403:
            assert r.json()["code"] == "path-not-allowed"
        assert c.get("/v1/datasets/evil").status_code == 404
        assert c.get("/healthz").status_code == 200


def test_an_unreadable_path_is_a_422_naming_it(server):
    with server.client() as c:
        r = c.put("/v1/datasets/long", json={"kind": "folder", "path": "n" * 300})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "File name too long" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200


def test_symlink_escape_is_refused(server, data_root):
    link = data_root.parent / "sneaky"
    link.symlink_to("/etc")
    with server.client() as c:
        r = c.put("/v1/datasets/sneaky", json={"kind": "folder", "path": str(link)})
    assert r.status_code == 403 and r.json()["code"] == "path-not-allowed"


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"rank": 2, "world_size": 2}, 422, "rank"),
        ({"batch_size": 0}, 422, "batch_size"),
        ({"start": N_IMAGES + 1}, 422, "start"),
        ({"recipe": "nope"}, 404, "nope"),
        ({"recipe": "no-fixed-size"}, 422, "one size"),
    ],
)
def test_bad_stream_requests(server, params, status, words):
    with server.client() as c:
        c.put("/v1/recipes/no-fixed-size", json={"ops": [{"op": "hflip"}]})
        query = {"recipe": "stream-test", "seed": 1, **params}
        r = c.get("/v1/datasets/train/stream", params=query)
    assert r.status_code == status, r.text
    assert words in r.text


def test_a_corrupt_file_ends_the_stream_with_a_typed_error(server, data_root, tmp_path):
    """Whole frames up to the bad batch, then an error frame the SDK raises as a typed error."""
    from augsvc_client import Client
    from augsvc_client.errors import UndecodableImage

    bad = data_root.parent / "bad"
    (bad / "a").mkdir(parents=True)
    for i in range(6):
        (bad / "a" / f"{i}.jpg").write_bytes(jpeg_bytes(20, 20, seed=i))
    (bad / "a" / "3.jpg").write_bytes(jpeg_bytes(20, 20)[:40])  # truncated
    with server.client() as c:
        assert c.put("/v1/datasets/bad", json={"kind": "folder", "path": str(bad)}).is_success
        query = {"recipe": "stream-test", "seed": 0, "batch_size": 2}
        with c.stream("GET", "/v1/datasets/bad/stream", params=query) as r:
            got = list(frames(r))
    assert got[-1][1]["error"] == "undecodable-image"
    assert "3.jpg" in got[-1][1]["detail"]
    assert all("images" in tensors for tensors, _ in got[:-1])
    with Client(server.url) as client, pytest.raises(UndecodableImage, match=r"3\.jpg"):
        for _ in client.stream("bad", "stream-test", seed=0, batch_size=2):
            pass
    with server.client() as c:
        assert c.get("/healthz").status_code == 200
