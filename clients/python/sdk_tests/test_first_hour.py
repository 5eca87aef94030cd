"""SDK-only checks of what a new user relies on: the URL and key from the environment,
the requests behind datasets, previews and ``output="list"``, the zip reader, and
``augment_iter``'s handling of indexable and merely iterable datasets."""

from __future__ import annotations

import io
import json
import zipfile
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import httpx
import numpy as np
import pytest
from augsvc_client import Client, request
from augsvc_client.archives import read_png_zip
from augsvc_client.client import connection
from augsvc_client.pipeline import chunks, is_indexed, split_items
from PIL import Image


class Recorder(BaseHTTPRequestHandler):
    """Answers every GET with ``{"ops": []}`` and remembers what it was sent."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        Recorder.seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps({"ops": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_environment_supplies_url_and_key(http_server, monkeypatch):
    server = http_server(Recorder)
    Recorder.seen.clear()
    monkeypatch.setenv("AUGSVC_URL", server.url + "/")
    monkeypatch.setenv("AUGSVC_API_KEY", "from-env")
    with Client() as client:
        assert client.base_url == server.url
        client.ops()
    with Client(api_key="given") as client:
        client.ops()
    with Client(api_key="") as client:
        client.ops()
    assert Recorder.seen == [
        ("/v1/ops", "Bearer from-env"),
        ("/v1/ops", "Bearer given"),
        ("/v1/ops", None),
    ]


def test_connection_falls_back_to_the_local_default(monkeypatch):
    monkeypatch.delenv("AUGSVC_URL", raising=False)
    monkeypatch.delenv("AUGSVC_API_KEY", raising=False)
    assert connection(None, None) == ("http://127.0.0.1:8000", None)
    monkeypatch.setenv("AUGSVC_URL", "http://elsewhere:9/")
    assert connection("http://given:1", None) == ("http://given:1", None)
    assert connection(None, None) == ("http://elsewhere:9", None)


def _built(call: request.Call) -> httpx.Request:
    with httpx.Client(base_url="http://augsvc.test") as http:
        return call.build(http)


def test_dataset_calls():
    put = _built(request.put_dataset("ds", "webdataset", None, "s3://bucket/shards"))
    assert (put.method, put.url.path) == ("PUT", "/v1/datasets/ds")
    assert json.loads(put.content) == {"kind": "webdataset", "url": "s3://bucket/shards"}
    assert _built(request.list_datasets()).url.path == "/v1/datasets"
    deleted = _built(request.delete_dataset("ds"))
    assert (deleted.method, deleted.url.path) == ("DELETE", "/v1/datasets/ds")


def test_a_preview_of_ones_own_image_is_a_post_with_one_part():
    png = _png(np.zeros((8, 8, 3), np.uint8))
    call = request.preview("train@2", 3, 4, png)
    built = _built(call)
    assert (built.method, built.url.path) == ("POST", "/v1/recipes/train@2/preview")
    assert dict(built.url.params) == {"seed": "3", "n": "4"}
    assert built.headers["Content-Type"].startswith("multipart/form-data")
    assert png in built.read()
    assert _built(request.preview("train", 0, 16)).method == "GET"


def test_output_list_asks_for_a_zip_of_pngs():
    built = _built(request.augment([np.zeros((4, 4, 3), np.uint8)], "r", seed=1, offset=0,
                                   return_params=False, output="list"))  # fmt: skip
    assert built.headers["Accept"] == "application/zip"
    assert built.url.params["format"] == "png"
    with pytest.raises(ValueError, match="return_params"):
        request.augment([b"x"], "r", seed=1, offset=0, return_params=True, output="list")
    with pytest.raises(ValueError, match="'list'"):
        request.augment([b"x"], "r", seed=1, offset=0, return_params=False, output="pil")


def _png(hwc: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc).save(out, format="PNG")
    return out.getvalue()


def test_a_zip_of_pngs_reads_back_as_chw_arrays_of_their_own_shapes():
    rng = np.random.default_rng(0)
    originals = [
        rng.integers(0, 256, shape, dtype=np.uint8)
        for shape in ((5, 7, 3), (9, 4, 1), (3, 3, 4), (6, 2, 3))
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in reversed(range(len(originals))):  # entry order is the names' order
            archive.writestr(f"{i:06d}.png", _png(originals[i]))
    images = read_png_zip(buffer.getvalue())
    assert [img.shape for img in images] == [(3, 5, 7), (1, 9, 4), (4, 3, 3), (3, 6, 2)]
    for got, want in zip(images, originals, strict=True):
        np.testing.assert_array_equal(np.moveaxis(got, 0, -1), want)


class IterableDataset:
    """Stands in for torch's: __getitem__ exists but indexing is not supported."""

    def __getitem__(self, index: int) -> object:
        raise NotImplementedError

    def __iter__(self):
        return iter(range(5))


class Streamed(IterableDataset):
    pass


def test_indexable_and_iterable_datasets_are_told_apart():
    assert is_indexed([1, 2]) and is_indexed(np.zeros((3, 4, 4, 3)))
    assert not is_indexed(x for x in range(3))
    assert not is_indexed(iter([1, 2]))
    assert not is_indexed(Streamed())  # a subclass of IterableDataset, found by name


def test_chunks_count_positions_as_items_arrive():
    pulled = []

    def generator():
        for i in range(7):
            pulled.append(i)
            yield i

    batches = chunks(generator(), 3)
    assert next(batches) == (0, [0, 1, 2]) and pulled == [0, 1, 2]  # read lazily
    assert list(batches) == [(3, [3, 4, 5]), (6, [6])]
    assert list(chunks([], 2)) == []
    with pytest.raises(ValueError):
        list(chunks([1], 0))


def test_split_items_reads_labels_and_names_a_mix():
    images, labels = split_items([("a", 1), ("b", np.int64(2))], 0)
    assert images == ["a", "b"] and labels.dtype == np.int64 and labels.tolist() == [1, 2]
    assert split_items(["a", "b"], 0) == (["a", "b"], None)
    with pytest.raises(ValueError, match=r"items 4\.\.5 mix"):
        split_items([("a", 1), "b"], 4)


def test_the_torch_dataset_reads_the_environment_too(monkeypatch):
    pytest.importorskip("torch")
    from augsvc_client.torch_data import AugsvcIterableDataset

    monkeypatch.setenv("AUGSVC_URL", "http://from-env:8123")
    monkeypatch.setenv("AUGSVC_API_KEY", "env-key")
    dataset = AugsvcIterableDataset(None, "imagenet", "train@3", seed=0)
    with dataset._client() as client:
        assert client.base_url == "http://from-env:8123"
        assert client._http.headers["Authorization"] == "Bearer env-key"
