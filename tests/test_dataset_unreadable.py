"""Datasets whose files go bad after registration, and COCO files that would crash
pycocotools, against a real server: typed answers naming the sample or the field, never
`internal`, never a dead server.

The unreadable cases are real conditions a root process meets too (tests run as root,
where chmod changes nothing): a file deleted, replaced by a folder, by a named pipe or
by a symlink loop.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests import dataset_files
from tests.dataset_files import H, W, coco_annotation, coco_image
from tests.stream_frames import frames

pytest.importorskip("pycocotools")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def server(start_augsvc, data_root):
    return dataset_files.start_dataset_server(start_augsvc, data_root)


def register(server, name: str, spec: dict) -> dict:
    with server.client() as c:
        r = c.put(f"/v1/datasets/{name}", json=spec)
    assert r.status_code == 201, r.text
    return r.json()


def stream(server, name: str, **params) -> tuple[int, list]:
    query = {"recipe": "small", "seed": 0, "batch_size": 1, **params}
    with server.client() as c, c.stream("GET", f"/v1/datasets/{name}/stream", params=query) as r:
        if r.status_code != 200:
            return r.status_code, [(None, json.loads(r.read()))]
        return 200, list(frames(r))


def alive(server) -> None:
    with server.client() as c:
        assert c.get("/healthz").status_code == 200
    assert server.running


def coco_spec(root: Path, images: list, anns: list) -> dict:
    document = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "x"}]}
    return dataset_files.coco(root, n=len(images), document=document)


# --- COCO values pycocotools must never see --------------------------------------------


@pytest.mark.parametrize(
    ("change", "loc", "words"),
    [
        ({"segmentation": [[0, 0, 1e9, 0, 1e9, 1e9]]}, ["segmentation", 0], "outside"),
        ({"segmentation": [[0, 0, 10, 0]]}, ["segmentation", 0], "at least 3 points"),
        ({"segmentation": [[0, 0, 10, 0, "x", 5]]}, ["segmentation", 0], "list of numbers"),
        ({"segmentation": {"size": [H, W], "counts": [10_000_000_000]}},
         ["segmentation", "counts"], "non-negative integers"),
        ({"segmentation": {"size": [H, W], "counts": [5, H * W]}},
         ["segmentation", "counts"], "add up to"),
        ({"segmentation": {"size": [H, W], "counts": "0o"}}, ["segmentation", "counts"],
         "ends inside a count"),
        ({"segmentation": {"size": [H, W], "counts": "\u00ff1"}}, ["segmentation", "counts"],
         "not in a compressed RLE"),
        ({"segmentation": {"size": [4000, 5000], "counts": [H * W]}}, ["segmentation", "size"],
         "[height, width]"),
        ({"bbox": [0, 0, 1e400, 4]}, ["bbox"], "finite"),
        ({"bbox": [0, 0, 10**400, 4]}, ["bbox"], "finite"),
        ({"segmentation": [[0, 0, 10**400, 0, 5, 5]]}, ["segmentation", 0], "finite"),
        ({"segmentation": [[0, 0, float("nan"), 0, 5, 5]]}, ["segmentation", 0], "finite"),
        ({"bbox": [0, 0, -3, 4]}, ["bbox"], "negative"),
        ({"category_id": "cat"}, ["category_id"], "integer"),
        ({"keypoints": [1, 2]}, ["keypoints"], "threes"),
    ],
)  # fmt: skip
def test_a_bad_annotation_is_a_422_at_registration_naming_it(server, data_root, change, loc, words):
    """Today the polygon at 1e9 registers and its stream kills the server (segfault in
    pycocotools); RLE counts of 1e10 end the stream with `internal`."""
    anns = [coco_annotation(0), coco_annotation(1, **change)]
    spec = coco_spec(
        data_root / f"bad-ann-{len(os.listdir(data_root))}", [coco_image(0), coco_image(1)], anns
    )
    with server.client() as c:
        r = c.put("/v1/datasets/bad-ann", json=spec)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation-failed"
    assert body["errors"][0]["loc"] == ["annotations", "annotations", 1, *loc]
    assert words in body["detail"], body["detail"]
    assert "(id 8)" in body["detail"]  # the annotation's own id, beside its index
    alive(server)


@pytest.mark.parametrize(
    ("image", "field"),
    [
        (coco_image(0, width=1_000_000_000, height=1_000_000_000), "height"),
        (coco_image(0, width=0), "width"),
        (coco_image(0, height=-4), "height"),
        ({**coco_image(0), "width": 50.5}, "width"),
        ({**coco_image(0), "id": [1]}, "id"),
    ],
)
def test_a_bad_image_entry_is_a_422_naming_it(server, data_root, image, field):
    spec = coco_spec(data_root / f"bad-img-{len(os.listdir(data_root))}", [image], [])
    with server.client() as c:
        r = c.put("/v1/datasets/bad-img", json=spec)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["annotations", "images", 0, field]
    alive(server)


def test_annotations_nested_100k_deep_are_refused_by_the_document_limit(server, data_root):
    folder = data_root / "deep"
    spec = dataset_files.coco(folder, n=1)
    Path(spec["annotations"]).write_text("[" * 100_000)
    with server.client() as c:
        r = c.put("/v1/datasets/deep", json=spec)
    assert r.status_code == 422, r.text
    assert "deeper than 64 levels" in r.json()["detail"]
    assert r.json()["errors"][0]["loc"] == ["annotations"]
    alive(server)


def test_a_valid_coco_file_still_streams_its_masks(server, data_root):
    spec = dataset_files.coco(data_root / "good-coco", n=4)
    assert register(server, "good-coco", spec)["size"] == 4
    status, got = stream(server, "good-coco", batch_size=2)
    assert status == 200
    assert all("error" not in meta for _, meta in got)
    assert sum(len(t["indices"]) for t, _ in got) == 4


# --- files that go away after registration ------------------------------------------


def _error(got: list) -> dict:
    assert got, "no frames"
    return got[-1][1]


def test_a_deleted_file_ends_the_stream_with_a_frame_naming_index_and_path(server, data_root):
    """Today: `{"error": "internal"}` and a FileNotFoundError traceback."""
    root = dataset_files.folder(data_root / "gone-file")
    register(server, "gone-file", {"kind": "folder", "path": str(root)})
    (root / "class1" / "003.jpg").unlink()
    status, got = stream(server, "gone-file")
    assert status == 200
    meta = _error(got)
    assert meta["error"] == "sample-unreadable", meta
    # class0 holds 000, 002, 004; class1 holds 001, 003, 005: 003.jpg is sample 4
    assert "sample 4 ('class1/003.jpg')" in meta["detail"], meta["detail"]
    assert "No such file" in meta["detail"]
    alive(server)


@pytest.mark.parametrize("how", ["folder", "fifo", "symlink-loop", "dangling-link"])
def test_a_file_replaced_by_something_unreadable_is_typed(server, data_root, how):
    """A real condition (no mocked filesystem): what a permission error is to a user,
    made as root can make it."""
    root = dataset_files.folder(data_root / f"replaced-{how}")
    name = f"replaced-{how}"
    register(server, name, {"kind": "folder", "path": str(root)})
    victim = root / "class0" / "002.jpg"
    victim.unlink()
    if how == "folder":
        victim.mkdir()
    elif how == "fifo":
        os.mkfifo(victim)
    elif how == "symlink-loop":
        victim.symlink_to(victim)
    else:
        victim.symlink_to(root / "nowhere.jpg")
    status, got = stream(server, name)
    assert status == 200
    meta = _error(got)
    assert meta["error"] == "sample-unreadable", meta
    assert "sample 1 ('class0/002.jpg')" in meta["detail"], meta["detail"]
    alive(server)


def test_a_deleted_folder_is_listed_with_an_error_and_refused_before_a_frame(server, data_root):
    """Today the list shows the old size and no error, and the stream ends `internal`."""
    root = dataset_files.folder(data_root / "gone-folder")
    register(server, "gone-folder", {"kind": "folder", "path": str(root)})
    shutil.rmtree(root)
    with server.client() as c:
        listed = {d["name"]: d for d in c.get("/v1/datasets").json()["datasets"]}
        one = c.get("/v1/datasets/gone-folder")
    entry = listed["gone-folder"]
    assert entry["size"] is None and entry["classes"] is None
    assert entry["error"]["code"] == "sample-unreadable", entry
    assert "gone-folder" in entry["error"]["detail"]
    assert one.status_code == 200 and one.json()["error"] == entry["error"]
    status, got = stream(server, "gone-folder")
    assert status == 422
    assert got[0][1]["code"] == "sample-unreadable"
    alive(server)


def test_a_rewritten_shard_is_reported_not_read_at_stale_offsets(server, data_root):
    root = dataset_files.shards(data_root / "rewritten")
    register(server, "rewritten", {"kind": "webdataset", "path": str(root)})
    shard = root / "shard-0.tar"
    shard.write_bytes(shard.read_bytes()[:1024])  # cut short, as a copy in progress is
    with server.client() as c:
        entry = c.get("/v1/datasets/rewritten").json()
    assert entry["error"]["code"] == "sample-unreadable"
    assert "shard-0.tar" in entry["error"]["detail"]
    alive(server)


def test_deleted_coco_annotations_and_masks_are_reported(server, data_root):
    spec = dataset_files.coco(data_root / "coco-gone", n=3)
    register(server, "coco-gone", spec)
    os.unlink(spec["annotations"])
    paired = dataset_files.paired(data_root / "paired-gone", n=3)
    register(server, "paired-gone", {"kind": "paired", "path": str(paired)})
    (paired / "masks" / "001.png").unlink()
    (paired / "masks" / "001.png").mkdir()
    with server.client() as c:
        coco_entry = c.get("/v1/datasets/coco-gone").json()
    assert coco_entry["error"]["code"] == "sample-unreadable"
    status, got = stream(server, "paired-gone")
    assert status == 200
    meta = _error(got)
    assert meta["error"] == "sample-unreadable", meta
    assert "sample 1 ('masks/001.png')" in meta["detail"]
    alive(server)


def test_a_truncated_file_is_named_by_its_path_and_index(server, data_root):
    root = dataset_files.folder(data_root / "truncated")
    register(server, "truncated", {"kind": "folder", "path": str(root)})
    victim = root / "class1" / "003.jpg"
    victim.write_bytes(victim.read_bytes()[:60])
    status, got = stream(server, "truncated")
    assert status == 200
    meta = _error(got)
    assert meta["error"] == "undecodable-image", meta
    assert "class1/003.jpg (sample 4)" in meta["detail"], meta["detail"]
