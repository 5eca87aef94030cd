"""The object-store side of datasets without an augsvc server: URL parsing and the
allow-list (property tests), the S3 client against a real `rclone serve s3`, shard
indexes built by ranged reads and shared through a real Redis, and the client's
behaviour towards misbehaving endpoints (real HTTP servers on loopback)."""

from __future__ import annotations

import asyncio
import http.server
import io
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from augsvc.config import Settings
from augsvc.datasets.object_urls import ObjectUrl, check_allowed, parse_object_url
from augsvc.datasets.spec import DatasetSpec
from augsvc.datasets.tar_index import index_tar
from augsvc.errors import (
    ObjectNotFound,
    ObjectStoreUnavailable,
    UrlNotAllowed,
    ValidationFailed,
)
from tests.imagegen import jpeg_bytes

BUCKET = "unit-bucket"
SEGMENT = st.text(alphabet="abcxyz019-_.", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
BUCKET_NAME = st.from_regex(r"[a-z0-9][a-z0-9-]{1,10}[a-z0-9]", fullmatch=True)


# --- URLs and the allow-list ----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    bucket=BUCKET_NAME, allowed=st.lists(SEGMENT, max_size=3), rest=st.lists(SEGMENT, max_size=3)
)
def test_the_allow_list_covers_a_url_exactly_when_its_segments_extend_an_entry(
    bucket, allowed, rest
):
    entry = parse_object_url("s3://" + "/".join([bucket, *allowed]))
    url = parse_object_url("s3://" + "/".join([bucket, *rest]) + "/")
    assert str(parse_object_url(str(url))) == str(url)  # the normal form is stable
    covered = rest[: len(allowed)] == allowed
    assert entry.covers(url) == covered
    if covered:
        check_allowed(url, [entry])
    else:
        with pytest.raises(UrlNotAllowed, match=str(url).replace(".", r"\.")):
            check_allowed(url, [entry])
    assert not ObjectUrl(bucket + "x", entry.key).covers(url)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60) | st.builds(lambda s: "s3://" + s, st.text(max_size=40)))
def test_any_text_parses_to_a_bucket_url_or_a_typed_refusal(text):
    try:
        url = parse_object_url(text)
    except (ValidationFailed, UrlNotAllowed) as exc:
        assert exc.status in (403, 422)
        return
    assert text.startswith("s3://")
    assert "@" not in url.bucket and ":" not in url.bucket and "/" not in url.bucket
    assert ".." not in url.key.split("/")
    assert parse_object_url(str(url)) == url


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        ("s3://key:secret@bucket/x", ValidationFailed, "credentials"),
        ("s3://key@bucket/x", ValidationFailed, "credentials"),
        ("http://169.254.169.254/latest/meta-data", UrlNotAllowed, "endpoint"),
        ("s3://bucket:9000/x", UrlNotAllowed, "endpoint"),
        ("s3://192.168.0.1/x", ValidationFailed, "bucket name"),
        ("az://container/x", ValidationFailed, "not served"),
        ("s3://bucket/x?versionId=1", ValidationFailed, "query"),
        ("s3://bucket/a//b", ValidationFailed, "empty"),
        ("/data/imgs", ValidationFailed, "not a URL"),
    ],
)
def test_urls_that_could_reach_elsewhere_are_refused(text, error, words):
    with pytest.raises(error, match=words) as caught:
        parse_object_url(text)
    assert "secret" not in caught.value.detail


def test_settings_check_the_allow_list_and_the_endpoint_at_start(monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("AUGSVC_"):
            monkeypatch.delenv(key)
    ok = Settings(data_urls="s3://a-bucket/imgs, s3://b-bucket", s3_endpoint="http://minio:9000/")
    assert ok.data_url_prefixes == ["s3://a-bucket/imgs", "s3://b-bucket"]
    assert ok.s3_endpoint == "http://minio:9000"
    for bad in (
        {"data_urls": "s3://user:pw@bucket/x"},
        {"data_urls": "https://bucket.example.com/x"},
        {"s3_endpoint": "minio:9000"},
        {"s3_endpoint": "http://key:secret@minio:9000"},
        {"s3_endpoint": "http://minio:9000/bucket"},
    ):
        with pytest.raises(ValidationError):
            Settings(**bad)


def test_a_spec_names_a_path_or_a_url():
    assert DatasetSpec(kind="folder", url="s3://b/x").path is None
    with pytest.raises(ValidationError, match="exactly one"):
        DatasetSpec(kind="folder")


def test_without_an_allow_list_every_url_is_a_403_naming_it(tmp_path):
    from augsvc.datasets.sources import open_source

    with pytest.raises(UrlNotAllowed, match=r"s3://any-bucket/x.*AUGSVC_DATA_URLS"):
        open_source(DatasetSpec(kind="folder", url="s3://any-bucket/x"), [tmp_path])


# --- against rclone serve s3 ------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(s3_server):
    from augsvc.datasets.object_store import ObjectStore

    with pytest.MonkeyPatch.context() as mp:
        for key, value in s3_server.env().items():
            mp.setenv(key, value)
        made = ObjectStore(s3_server.endpoint, "us-east-1", concurrency=4)
        made._s3()  # botocore reads the credentials from the environment now
    yield made
    made.close()


def _shard(path: Path, members: list[tuple[str, bytes]], fmt: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=fmt) as tar:
        for name, blob in members:
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


@pytest.fixture(scope="module")
def shards(s3_server) -> list[Path]:
    """Shards in the formats tar writers use: GNU long names, PAX headers, plain ustar,
    with members large and small (headers a window apart, or many to a window)."""
    root = s3_server.root / BUCKET / "shards"
    made = []
    for s, fmt in enumerate((tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT)):
        members = []
        for i in range(12):
            key = f"s{s}-{i:03d}" + ("-long" * 30 if fmt != tarfile.USTAR_FORMAT and i % 3 else "")
            big = 40_000 if i % 4 == 0 else 0
            image = jpeg_bytes(24, 24, seed=s * 100 + i) + b"\0" * big
            members += [(f"{key}.jpg", image), (f"{key}.cls", str(i).encode())]
            if i % 5 == 0:
                members.append((f"{key}.json", b'{"caption": "x"}'))
        _shard(root / f"part-{s}.tar", members, fmt)
        made.append(root / f"part-{s}.tar")
    return made


def test_a_shard_indexed_by_ranged_reads_equals_the_local_index(store, shards):
    from augsvc.datasets.object_store import ObjectInfo
    from augsvc.datasets.shard_index import NoIndexCache, shard_entries

    for path in shards:
        key = f"shards/{path.name}"
        with path.open("rb") as f:
            local = index_tar(f, path.name)
        before = store.requests
        remote = shard_entries(
            store, BUCKET, ObjectInfo(key, path.stat().st_size, "e"), NoIndexCache()
        )
        assert remote == local
        assert len(local) == 12
        # headers only: far fewer requests than members, and the image bytes are where
        # the index says
        assert store.requests - before < len(local)
        offset, size, _, label = remote[4]
        assert (
            store.get(BUCKET, key, offset, offset + size)
            == path.read_bytes()[offset : offset + size]
        )
        assert label == 4


def test_reads_whole_and_ranged_and_typed_failures(store, s3_server):
    (s3_server.root / BUCKET / "misc").mkdir(parents=True, exist_ok=True)
    blob = bytes(range(256)) * 40
    (s3_server.root / BUCKET / "misc" / "blob.bin").write_bytes(blob)
    assert store.get(BUCKET, "misc/blob.bin") == blob
    assert store.get(BUCKET, "misc/blob.bin", 1000, 1512) == blob[1000:1512]
    assert store.head(BUCKET, "misc/nope.bin") is None
    assert [o.key for o in store.list(BUCKET, "misc/")] == ["misc/blob.bin"]
    with pytest.raises(ObjectNotFound, match="no such object"):
        store.get(BUCKET, "misc/nope.bin")
    with pytest.raises(ObjectNotFound, match="no such bucket"):
        store.list("no-such-bucket", "")


def test_wrong_credentials_are_a_503_that_names_no_secret(s3_server, monkeypatch):
    from augsvc.datasets.object_store import ObjectStore

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a-wrong-secret-value")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    wrong = ObjectStore(s3_server.endpoint, "us-east-1", attempts=1)
    with pytest.raises(ObjectStoreUnavailable, match="refused the server's credentials") as caught:
        wrong.list(BUCKET, "")
    assert "a-wrong-secret-value" not in caught.value.detail
    wrong.close()


@pytest.fixture
def event_loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_a_second_replica_takes_the_shard_indexes_from_redis(
    s3_server, shards, redis_server, event_loop_thread
):
    """Two stores (two replicas) over one Redis: the second lists the shards and reads no
    header; its samples are the first one's."""
    from redis.asyncio import Redis

    from augsvc.datasets.object_store import ObjectStore
    from augsvc.datasets.remote_sources import ObjectSources
    from augsvc.service.sources import RedisIndexCache

    prefix = f"index-{uuid.uuid4().hex[:8]}"
    client = asyncio.run_coroutine_threadsafe(_connect(redis_server.url), event_loop_thread).result(
        10
    )
    spec = DatasetSpec(kind="webdataset", url=f"s3://{BUCKET}/shards")
    opened = []
    with pytest.MonkeyPatch.context() as mp:
        for key, value in s3_server.env().items():
            mp.setenv(key, value)
        for _ in range(2):
            replica = ObjectStore(s3_server.endpoint, "us-east-1", concurrency=4)
            cache = RedisIndexCache(client, prefix, event_loop_thread)
            sources = ObjectSources(replica, [parse_object_url(f"s3://{BUCKET}")], cache)
            opened.append((sources.open(spec), replica.requests))
            replica.close()
    (first, first_requests), (second, second_requests) = opened
    assert first.members == second.members and len(first) == 36
    assert first_requests > len(shards) + 1  # listing + headers of every shard
    assert second_requests == 1  # the listing only
    assert isinstance(client, Redis)
    asyncio.run_coroutine_threadsafe(client.aclose(), event_loop_thread).result(10)


async def _connect(url: str):
    from redis.asyncio import Redis

    client = Redis.from_url(url, decode_responses=True)
    await client.ping()
    return client


# --- misbehaving endpoints (real HTTP servers on loopback) -------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str]
    answer: Callable[[int], tuple[int, dict[str, str], bytes]]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        status, headers, body = type(self).answer(len(self.hits))
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        return


def _serve(answer) -> tuple[str, list[str], http.server.ThreadingHTTPServer]:
    hits: list[str] = []
    handler = type("Handler", (_Recorder,), {"hits": hits, "answer": staticmethod(answer)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", hits, server


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_a_redirect_to_another_host_is_never_followed(credentials):
    pytest.importorskip("botocore")
    from augsvc.datasets.object_store import ObjectStore

    elsewhere, elsewhere_hits, other = _serve(lambda n: (200, {}, b"leaked"))
    endpoint, hits, redirector = _serve(lambda n: (307, {"Location": elsewhere + "/x"}, b""))
    store = ObjectStore(endpoint, "us-east-1", attempts=2)
    try:
        started = time.monotonic()
        with pytest.raises(ObjectStoreUnavailable, match="redirect"):
            store.get(BUCKET, "a.jpg")
        with pytest.raises(ObjectStoreUnavailable, match="redirect"):
            store.list(BUCKET, "x/")
        assert time.monotonic() - started < 20
    finally:
        store.close()
        redirector.shutdown()
        other.shutdown()
    assert hits and elsewhere_hits == []


def test_transient_failures_are_retried_with_backoff(credentials):
    pytest.importorskip("botocore")
    from augsvc.datasets.object_store import ObjectStore

    body = b"the object's bytes"

    def flaky(n: int):
        return (503, {}, b"<Error><Code>SlowDown</Code></Error>") if n <= 2 else (200, {}, body)

    endpoint, hits, server = _serve(flaky)
    store = ObjectStore(endpoint, "us-east-1", attempts=3)
    try:
        assert store.get(BUCKET, "k.jpg") == body
        assert len(hits) == 3
        hits.clear()
        down, down_hits, down_server = _serve(lambda n: (503, {}, b""))
        dead = ObjectStore(down, "us-east-1", attempts=3)
        with pytest.raises(ObjectStoreUnavailable, match="503"):
            dead.get(BUCKET, "k.jpg")
        assert len(down_hits) == 3
        dead.close()
        down_server.shutdown()
    finally:
        store.close()
        server.shutdown()


def test_a_range_answer_is_checked(credentials):
    """A 200 whose Content-Range is not the range asked for is refused; a 200 without
    one is the whole object, and the range is cut from it."""
    pytest.importorskip("botocore")
    from augsvc.datasets.object_store import ObjectStore

    whole = bytes(range(100))
    endpoint, _, server = _serve(lambda n: (200, {"Content-Range": "bytes 0-9/100"}, whole[:10]))
    store = ObjectStore(endpoint, "us-east-1", attempts=1)
    plain_endpoint, _, plain = _serve(lambda n: (200, {}, whole))
    plain_store = ObjectStore(plain_endpoint, "us-east-1", attempts=1)
    try:
        assert store.get(BUCKET, "k", 0, 10) == whole[:10]
        with pytest.raises(ObjectStoreUnavailable, match="asked for bytes 10-19"):
            store.get(BUCKET, "k", 10, 20)
        assert plain_store.get(BUCKET, "k", 10, 20) == whole[10:20]
    finally:
        store.close()
        plain_store.close()
        server.shutdown()
        plain.shutdown()


# --- sources over the bucket: listing and prefetch ----------------------------------------------


@pytest.fixture(scope="module")
def prefix(s3_server) -> str:
    root = s3_server.root / BUCKET / "prefix"
    for i in range(24):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"c{i % 2}" / f"{i:02d}.jpg").write_bytes(jpeg_bytes(16, 16, seed=i))
    (root / "c0" / "notes.txt").write_text("not an image")
    (root / "flat.jpg").write_bytes(jpeg_bytes(8, 8))  # beside class folders: not a sample
    return "prefix"


def test_a_prefix_lists_as_a_folder_walk(store, prefix):
    from augsvc.datasets.remote_sources import ObjectSources

    sources = ObjectSources(store, [parse_object_url(f"s3://{BUCKET}")])
    source = sources.open(DatasetSpec(kind="folder", url=f"s3://{BUCKET}/{prefix}"))
    assert source.classes == ["c0", "c1"]
    assert source.keys == sorted(source.keys, key=lambda k: k.split("/"))
    assert [k.rsplit("/", 1)[-1] for k in source.keys[:3]] == ["00.jpg", "02.jpg", "04.jpg"]
    assert source.labels == [0] * 12 + [1] * 12


@pytest.mark.parametrize(
    ("relative", "plain"),
    [("c0/a.jpg", True), ("c1/../c0/a.jpg", False), ("c1/./a.jpg", False), ("c1//a.jpg", False)],
)
def test_keys_a_folder_could_not_hold_are_not_samples(relative, plain):
    """A server that normalised dot segments would read outside the allowed prefix."""
    from augsvc.datasets.remote_sources import _plain

    assert _plain(relative) is plain


def test_a_stream_reads_the_next_batch_ahead_and_only_that(store, prefix):
    """While batch k renders, batch k+1's objects download (and no further batch's)."""
    import numpy as np

    from augsvc.datasets.remote_sources import ObjectSources

    sources = ObjectSources(store, [parse_object_url(f"s3://{BUCKET}")])
    source = sources.open(DatasetSpec(kind="folder", url=f"s3://{BUCKET}/{prefix}"))
    order = np.arange(len(source))[::-1].copy()
    batches = [np.arange(i, min(i + 5, len(source))) for i in range(0, len(source), 5)]
    view = source.for_stream(order, batches)
    base = store.requests

    def settled_requests() -> int:
        deadline = time.monotonic() + 10
        seen = -1
        while store.requests != seen and time.monotonic() < deadline:
            seen = store.requests
            time.sleep(0.3)
        return seen

    first = view.read_many([int(i) for i in order[batches[0]]])
    assert settled_requests() - base == 5 + 5  # batch 0, and batch 1 ahead
    second = view.read_many([int(i) for i in order[batches[1]]])
    assert settled_requests() - base == 5 + 5 + 5  # batch 1 came from the prefetch
    for got, batch in ((first, batches[0]), (second, batches[1])):
        assert got == [source.read(int(i)) for i in order[batch]]
    view.close()


def test_a_mixing_stream_downloads_the_partners_ahead_too(store, prefix):
    """A mixing stream renders each batch with its partners: the prefetch fetches both."""
    import numpy as np

    from augsvc.datasets.mixing import MixSpec
    from augsvc.datasets.remote_sources import ObjectSources
    from augsvc.datasets.stream import StreamRequest

    sources = ObjectSources(store, [parse_object_url(f"s3://{BUCKET}")])
    source = sources.open(DatasetSpec(kind="folder", url=f"s3://{BUCKET}/{prefix}"))
    request = StreamRequest(seed=3, batch_size=4, mix=MixSpec(mixup_alpha=1.0, num_classes=2))
    order = np.arange(len(source))[::-1].copy()
    rendered = [request.rendered(b, len(source)) for b in request.batches(len(source))]
    assert all(len(r) == 8 for r in rendered)
    view = source.for_stream(order, rendered)
    base = store.requests

    def settled_requests() -> int:
        deadline = time.monotonic() + 10
        seen = -1
        while store.requests != seen and time.monotonic() < deadline:
            seen = store.requests
            time.sleep(0.3)
        return seen

    first = view.read_many([int(i) for i in order[rendered[0]]])
    assert settled_requests() - base == 8 + 8  # batch 0 with its partners, batch 1's ahead
    second = view.read_many([int(i) for i in order[rendered[1]]])
    assert settled_requests() - base == 8 + 8 + 8  # batch 1 came from the prefetch, 2 ahead
    assert first == [source.read(int(i)) for i in order[rendered[0]]]
    assert second == [source.read(int(i)) for i in order[rendered[1]]]
    view.close()
