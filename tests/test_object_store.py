"""Datasets in object storage, against a real S3-compatible server on loopback.

`rclone serve s3` (a real server that checks SigV4 signatures) serves a folder whose
subfolder ``train-data`` is the bucket; the same folder is also the servers' local data
root. So every object-store dataset has a local twin made of the very same files, and a
stream from the bucket must be byte-identical to the stream from disk: coverage over
ranks, resume and re-shard included. Two `augsvc serve` replicas share one Redis; the
datasets are registered through A and streamed through both.
"""

from __future__ import annotations

import io
import socket
import tarfile
import uuid
from pathlib import Path

import numpy as np
import pytest

from augsvc.datasets import epoch_order
from tests.imagegen import jpeg_bytes, png_bytes
from tests.stream_frames import Frame, frames

pytestmark = pytest.mark.slow

BUCKET = "train-data"
N_FOLDER = 60  # 3 classes x 20
SHARD_SIZES = (20, 25, 15)
N_SHARDS = sum(SHARD_SIZES)
SEED = 23
RECIPE = {
    "ops": [
        {"op": "rotate", "degrees": 15},
        {"op": "random_resized_crop", "size": 20, "scale": [0.5, 1.0]},
        {"op": "hflip"},
        {"op": "color_jitter", "brightness": 0.3},
    ],
    "output": {"channels": 3},
}
ALLOWED = ["imgs", "shards", "empty", "vanishing"]
# (dataset name, kind, local path under the data root, URL in the bucket, size)
TWINS = [
    ("imgs", "folder", "imgs", f"s3://{BUCKET}/imgs", N_FOLDER),
    ("shards", "webdataset", "shards", f"s3://{BUCKET}/shards", N_SHARDS),
]


def _image(i: int) -> tuple[str, bytes]:
    if i % 4 == 0:
        return "png", png_bytes(36 + i % 5, 28, seed=i)
    return "jpg", jpeg_bytes(36, 28 + i % 3, seed=i)


def _write_shard(path: Path, first: int, count: int) -> None:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for i in range(first, first + count):
            ext, data = _image(i)
            key = f"sample-{i:05d}" + ("-with-a-long-name" * 7 if i % 9 == 0 else "")
            for name, blob in ((f"{key}.{ext}", data), (f"{key}.cls", str(i % 4).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))


@pytest.fixture(scope="module")
def bucket(s3_server) -> Path:
    """The bucket's folder: also the local data root of the same files."""
    root = s3_server.root / BUCKET
    for i in range(N_FOLDER):
        folder = root / "imgs" / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        ext, data = _image(i)
        (folder / f"{i:04d}.{ext}").write_bytes(data)
    (root / "shards").mkdir()
    first = 0
    for s, count in enumerate(SHARD_SIZES):
        _write_shard(root / "shards" / f"train-{s}.tar", first, count)
        first += count
    (root / "shards" / "README.txt").write_text("not a shard")
    (root / "private").mkdir()
    (root / "private" / "secret.jpg").write_bytes(jpeg_bytes(8, 8))
    (root / "vanishing" / "a").mkdir(parents=True)
    for i in range(6):
        (root / "vanishing" / "a" / f"{i}.jpg").write_bytes(jpeg_bytes(20, 20, seed=i))
    return root


@pytest.fixture(scope="module")
def replicas(start_augsvc, redis_server, s3_server, bucket):
    """Replicas A and B on one Redis; everything is registered through A."""
    allowed = [f"s3://{BUCKET}/{p}" for p in ALLOWED] + ["s3://missing-bucket"]
    env = {
        "AUGSVC_REDIS_URL": redis_server.url,
        "AUGSVC_REDIS_PREFIX": f"objects-{uuid.uuid4().hex[:12]}",
        "AUGSVC_DATA_ROOTS": str(bucket),
        "AUGSVC_DATA_URLS": ",".join(allowed),
        "AUGSVC_S3_ENDPOINT": s3_server.endpoint,
        **s3_server.env(),
    }
    a, b = start_augsvc(**env), start_augsvc(**env)
    with a.client() as c:
        assert c.put("/v1/recipes/objects", json=RECIPE).status_code == 201
        for name, kind, path, url, size in TWINS:
            local = c.put(f"/v1/datasets/local-{name}", json={"kind": kind, "path": path})
            remote = c.put(f"/v1/datasets/s3-{name}", json={"kind": kind, "url": url})
            assert local.status_code == 201, local.text
            assert remote.status_code == 201, remote.text
            assert remote.json()["size"] == local.json()["size"] == size
    return a, b


def stream(server, dataset: str, **params) -> list[Frame]:
    query = {"recipe": "objects", "seed": SEED, "batch_size": 8, **params}
    with server.client() as c, c.stream("GET", f"/v1/datasets/{dataset}/stream", params=query) as r:
        assert r.status_code == 200, r.read()
        return list(frames(r))


def by_index(got: list[Frame]) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for tensors, meta in got:
        assert "error" not in meta, meta
        for idx, image in zip(tensors["indices"].tolist(), tensors["images"], strict=True):
            assert idx not in out, f"index {idx} streamed twice"
            out[idx] = image.tobytes()
    return out


def labels_by_index(got: list[Frame]) -> dict[int, int]:
    return {
        i: label
        for tensors, _ in got
        for i, label in zip(tensors["indices"].tolist(), tensors["labels"].tolist(), strict=True)
    }


# --- registration ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind", "path", "url", "size"), TWINS)
def test_a_bucket_dataset_indexes_as_its_local_twin(replicas, name, kind, path, url, size):
    _, b = replicas
    with b.client() as c:  # registered through A, read through B
        local = c.get(f"/v1/datasets/local-{name}").json()
        remote = c.get(f"/v1/datasets/s3-{name}").json()
    assert remote["url"] == url and "path" not in remote
    assert (remote["size"], remote["classes"]) == (local["size"], local["classes"])
    if kind == "folder":
        assert remote["classes"] == ["class0", "class1", "class2"]


# --- exact coverage, resume, re-shard ---------------------------------------------------------


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("name", [t[0] for t in TWINS])
def test_ranks_cover_the_bucket_exactly_once_with_the_local_bytes(replicas, name, world_size):
    """Rank r streams from replica r % 2; together the ranks give every index once, each
    sample byte-identical to the local-disk stream of the same file."""
    size = next(t[4] for t in TWINS if t[0] == name)
    local = stream(replicas[0], f"local-{name}")
    remote: list[Frame] = []
    for rank in range(world_size):
        remote += stream(replicas[rank % 2], f"s3-{name}", rank=rank, world_size=world_size)
    got, want = by_index(remote), by_index(local)
    assert sorted(got) == list(range(size))
    assert got == want
    assert labels_by_index(remote) == labels_by_index(local)


@pytest.mark.parametrize("name", [t[0] for t in TWINS])
def test_resume_and_reshard_equal_the_uninterrupted_local_run(replicas, name):
    a, b = replicas
    size = next(t[4] for t in TWINS if t[0] == name)
    full = by_index(stream(a, f"local-{name}", epoch=2))
    k = 21
    remaining = set(epoch_order(size, SEED, 2)[k:].tolist())
    same_world = by_index(
        stream(b, f"s3-{name}", epoch=2, rank=0, world_size=2, start=k)
        + stream(a, f"s3-{name}", epoch=2, rank=1, world_size=2, start=k)
    )
    regrown = by_index(
        [
            f
            for r in range(3)
            for f in stream(b, f"s3-{name}", epoch=2, rank=r, world_size=3, start=k)
        ]
    )
    for resumed in (same_world, regrown):
        assert set(resumed) == remaining
        assert all(resumed[i] == full[i] for i in remaining)


def test_two_replicas_serve_the_same_stream_bytes(replicas):
    a, b = replicas
    query = {"recipe": "objects", "seed": 5, "batch_size": 16, "epoch": 1}
    bodies = []
    for server in (a, b):
        with server.client() as c:
            r = c.get("/v1/datasets/s3-shards/stream", params=query)
        assert r.status_code == 200
        bodies.append(r.content)
    assert bodies[0] == bodies[1]
    assert len(bodies[0]) > N_SHARDS * 3 * 20 * 20


def test_the_shard_indexes_are_shared_through_redis(replicas, redis_server):
    """Replica A indexed each shard once and put it in Redis, where B found it."""
    import redis

    a, _ = replicas
    prefix = a.env["AUGSVC_REDIS_PREFIX"]
    client = redis.Redis.from_url(redis_server.url)
    try:
        keys = client.keys(f"{prefix}:shard-index:*")
    finally:
        client.close()
    assert len(keys) == len(SHARD_SIZES)


# --- refusals ---------------------------------------------------------------------------------


@pytest.fixture
def sentinel():
    """A listening socket that no request must ever reach."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.settimeout(0.3)
        yield sock

        with pytest.raises(TimeoutError):
            sock.accept()


def _refused(server, spec: dict, status: int, code: str) -> dict:
    with server.client() as c:
        r = c.put("/v1/datasets/refused", json=spec)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == code
        assert c.get("/v1/datasets/refused").status_code == 404
        assert c.get("/healthz").status_code == 200
        return r.json()


@pytest.mark.parametrize(
    "url", [f"s3://{BUCKET}/private", f"s3://{BUCKET}/imgs-and-more", "s3://another-bucket/imgs"]
)
def test_a_url_outside_the_allow_list_is_a_403_naming_it(replicas, url):
    body = _refused(replicas[0], {"kind": "folder", "url": url}, 403, "url-not-allowed")
    assert url in body["detail"]


def test_a_url_that_names_an_endpoint_is_refused_without_a_request(replicas, sentinel):
    port = sentinel.getsockname()[1]
    for url in (
        f"http://127.0.0.1:{port}/{BUCKET}/imgs",
        f"https://127.0.0.1:{port}/{BUCKET}/imgs",
        f"s3://127.0.0.1:{port}/{BUCKET}/imgs",
        f"s3://localhost:{port}/imgs",
    ):
        body = _refused(replicas[0], {"kind": "folder", "url": url}, 403, "url-not-allowed")
        assert "endpoint" in body["detail"]


def test_a_url_with_credentials_is_refused_and_they_are_never_echoed(replicas):
    secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRET"
    url = f"s3://AKIAIOSFODNN7EXAMPLE:{secret}@{BUCKET}/imgs"
    body = _refused(replicas[0], {"kind": "folder", "url": url}, 422, "validation-failed")
    assert "credentials" in body["detail"]
    assert secret not in str(body) and "AKIAIOSFODNN7EXAMPLE" not in str(body)
    a = replicas[0]
    assert secret not in a.stderr_tail(10**7)
    assert secret not in a.stdout_path.read_text()


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"kind": "folder", "url": "s3://missing-bucket/imgs"}, "no such bucket"),
        ({"kind": "webdataset", "url": f"s3://{BUCKET}/shards/train-9.tar"}, "no such object"),
        ({"kind": "folder", "url": f"s3://{BUCKET}/empty"}, "no objects"),
    ],
)
def test_a_missing_bucket_or_object_is_a_typed_404(replicas, spec, words):
    body = _refused(replicas[1], spec, 404, "object-not-found")
    assert words in body["detail"] and spec["url"] in body["detail"]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"kind": "folder", "url": "gs://bucket/imgs"}, "not served"),
        ({"kind": "folder", "url": f"s3://{BUCKET}/imgs/../private"}, "'..'"),
        ({"kind": "folder", "url": "s3://Bad_Bucket/imgs"}, "bucket name"),
        ({"kind": "folder", "path": "imgs", "url": f"s3://{BUCKET}/imgs"}, "exactly one"),
    ],
)
def test_malformed_urls_are_a_422(replicas, spec, words):
    body = _refused(replicas[0], spec, 422, "validation-failed")
    assert words in body["detail"]


def test_the_server_credentials_never_reach_a_log_or_an_answer(replicas, s3_server):
    for server in replicas:
        text = server.stderr_tail(10**7) + server.stdout_path.read_text()
        assert s3_server.secret_key not in text


def test_an_object_deleted_after_registration_ends_the_stream_with_a_typed_frame(replicas, bucket):
    from augsvc_client import Client
    from augsvc_client.errors import ObjectNotFound

    a, _ = replicas
    with a.client() as c:
        spec = {"kind": "folder", "url": f"s3://{BUCKET}/vanishing"}
        assert c.put("/v1/datasets/vanishing", json=spec).status_code == 201
    assert len(by_index(stream(a, "vanishing", batch_size=2))) == 6  # A keeps its index
    (bucket / "vanishing" / "a" / "3.jpg").unlink()
    got = stream(a, "vanishing", batch_size=2)
    assert got[-1][1]["error"] == "object-not-found"
    assert "vanishing/a/3.jpg" in got[-1][1]["detail"]
    assert all("images" in tensors for tensors, _ in got[:-1])
    with Client(a.url) as client, pytest.raises(ObjectNotFound, match=r"3\.jpg"):
        for _ in client.stream("vanishing", "objects", seed=SEED, batch_size=2):
            pass
    with a.client() as c:
        assert c.get("/healthz").status_code == 200
    assert len(stream(a, "s3-imgs", batch_size=30)) == 2  # the others still stream


def test_streams_decode_the_objects_they_name(replicas, bucket):
    """The labels of the bucket's WebDataset stream are the .cls members written."""
    got = stream(replicas[1], "s3-shards")
    order = sorted(labels_by_index(got).items())
    assert [label for _, label in order] == [i % 4 for i in range(N_SHARDS)]
    names = sorted(p.name for p in (bucket / "shards").glob("*.tar"))
    assert names == ["train-0.tar", "train-1.tar", "train-2.tar"]
    assert np.mean([t["images"].mean() for t, _ in got]) > 0
