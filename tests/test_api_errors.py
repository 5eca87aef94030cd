"""A corpus of bad requests against a real server: each gets the right 4xx problem+json
naming what was wrong, and the server keeps serving after every one of them."""

from __future__ import annotations

import json
import struct
import subprocess
import threading
from collections.abc import Iterator

import httpx
import pytest

from augsvc.api.routes.datasets import MAX_SPEC_BYTES
from augsvc.documents import MAX_NESTING
from tests.imagegen import jpeg_bytes, png_bytes, png_with_declared_size, tensor_safetensors
from tests.nasty_documents import NASTY

MAX_IMAGES = 4
MAX_REQUEST_BYTES = 1_000_000
MAX_OUTPUT_PIXELS = 100_000
MAX_RECIPE_BYTES = 600_000
RECIPE = {"ops": [{"op": "hflip"}], "output": {"size": [24, 32]}}
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(start_augsvc):
    return start_augsvc(
        AUGSVC_MAX_IMAGES=str(MAX_IMAGES),
        AUGSVC_MAX_REQUEST_BYTES=str(MAX_REQUEST_BYTES),
        AUGSVC_MAX_OUTPUT_PIXELS=str(MAX_OUTPUT_PIXELS),
        AUGSVC_MAX_RECIPE_BYTES=str(MAX_RECIPE_BYTES),
        AUGSVC_QUEUE_DEPTH="1",
        AUGSVC_ENGINE_THREADS="1",
    )


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with server.client() as c:
        assert c.put("/v1/recipes/errs", json=RECIPE).status_code == 201
        yield c


def assert_problem(response: httpx.Response, status: int, code: str, *named: str) -> dict:
    """The response is a problem of this status/code whose detail names every ``named``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:augsvc:problem:{code}"
    for thing in named:
        assert thing in body["detail"], (thing, body["detail"])
    return body


@pytest.fixture(autouse=True)
def still_serving(client) -> Iterator[None]:
    """After every bad request, the process is alive and answers."""
    yield
    assert client.get("/healthz").json() == {"status": "ok"}


def augment(client: httpx.Client, files, **params) -> httpx.Response:
    params.setdefault("recipe", "errs")
    params.setdefault("seed", 1)
    return client.post("/v1/augment", params=params, files=files)


def one_file(name: str, data: bytes, content_type: str = "image/jpeg"):
    return [("image", (name, data, content_type))]


GOOD = jpeg_bytes(64, 48)


def test_the_good_request_works(client):
    assert augment(client, one_file("ok.jpg", GOOD)).status_code == 200


def test_truncated_jpeg(client):
    response = augment(client, one_file("half.jpg", GOOD[: len(GOOD) // 2]))
    body = assert_problem(response, 422, "undecodable-image", "half.jpg", "truncated")
    assert body["instance"] == "/v1/augment"


def test_zero_bytes(client):
    assert_problem(augment(client, one_file("empty.jpg", b"")), 422, "undecodable-image",
                   "empty.jpg", "0 bytes")  # fmt: skip


def test_text_file_named_jpg(client):
    response = augment(client, one_file("notes.jpg", b"just some text\n" * 10))
    assert_problem(response, 422, "undecodable-image", "notes.jpg", "not a recognised image")


def test_bad_image_among_good_ones_is_named(client):
    files = [*one_file("a.jpg", GOOD), *one_file("b.jpg", b"garbage" * 20)]
    assert_problem(augment(client, files), 422, "undecodable-image", "b.jpg")


def test_png_claiming_30000x30000(client):
    response = augment(
        client, one_file("bomb.png", png_with_declared_size(30000, 30000), "image/png")
    )
    assert_problem(response, 413, "image-too-large", "bomb.png", "30000x30000")


def test_more_images_than_the_limit(client):
    files = [("image", (f"{i}.jpg", GOOD, "image/jpeg")) for i in range(MAX_IMAGES + 1)]
    assert_problem(augment(client, files), 413, "too-many-images", str(MAX_IMAGES))


def test_safetensors_with_too_many_images(client):
    body = tensor_safetensors((MAX_IMAGES + 1, 3, 8, 8))
    response = client.post(
        "/v1/augment",
        params={"recipe": "errs", "seed": 1},
        content=body,
        headers={"Content-Type": "application/x-safetensors"},
    )
    assert_problem(response, 413, "too-many-images", str(MAX_IMAGES))


def test_output_pixel_limit(client):
    big = {"ops": [{"op": "resize", "size": [400, 400]}]}
    files = [*one_file("a.jpg", GOOD), ("recipe", (None, json.dumps(big)))]
    response = client.post("/v1/augment", params={"seed": 1}, files=files)
    assert_problem(response, 413, "payload-too-large", "output pixels", str(MAX_OUTPUT_PIXELS))


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "image/jpeg"])
def test_wrong_content_type(client, content_type):
    response = client.post(
        "/v1/augment", params={"recipe": "errs"}, content=GOOD,
        headers={"Content-Type": content_type},
    )  # fmt: skip
    assert_problem(response, 415, "unsupported-media-type", content_type,
                   "multipart/form-data", "application/x-safetensors")  # fmt: skip


def test_recipe_with_a_negative_crop_size(client):
    response = client.put("/v1/recipes/neg", json={"ops": [{"op": "crop", "size": [-4, 10]}]})
    body = assert_problem(response, 422, "invalid-recipe", "ops[0].size")
    assert body["errors"][0]["loc"] == ["ops", 0, "size"]


def test_unknown_op(client):
    response = client.put("/v1/recipes/unk", json={"ops": [{"op": "hflip"}, {"op": "swirl"}]})
    body = assert_problem(response, 422, "invalid-recipe", "ops[1]", "swirl")
    assert body["errors"][0]["loc"] == ["ops", 1]


def test_inline_recipe_errors(client):
    bad_json = [*one_file("a.jpg", GOOD), ("recipe", (None, "{not json"))]
    response = client.post("/v1/augment", params={"seed": 1}, files=bad_json)
    assert_problem(response, 422, "invalid-recipe", "'recipe' part", "JSON")
    both = [*one_file("a.jpg", GOOD), ("recipe", (None, json.dumps(RECIPE)))]
    response = client.post("/v1/augment", params={"seed": 1, "recipe": "errs"}, files=both)
    assert_problem(response, 422, "validation-failed", "exactly one recipe", "both")
    neither = client.post("/v1/augment", params={"seed": 1}, files=one_file("a.jpg", GOOD))
    assert_problem(neither, 422, "validation-failed", "exactly one recipe", "neither")


def test_invalid_recipe_bodies(client):
    response = client.put(
        "/v1/recipes/yamlbad",
        content=b"ops: [unclosed",
        headers={"Content-Type": "application/yaml"},
    )
    assert_problem(response, 422, "invalid-recipe", "YAML")
    response = client.put(
        "/v1/recipes/nolist", content=b"[1, 2]", headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 422, "invalid-recipe", "JSON object")
    response = client.put("/v1/recipes/Bad%20Name", json=RECIPE)
    assert_problem(response, 422, "invalid-reference", "Bad Name")
    # curl's default type is sniffed (tests/test_api_conventions.py): a form is no recipe
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = client.put("/v1/recipes/form", content=b"a=b", headers=form)
    assert_problem(response, 422, "invalid-recipe", "JSON object")
    response = client.put("/v1/recipes/form", content=b"a=b", headers={"Content-Type": "image/png"})
    assert_problem(response, 415, "unsupported-media-type", "application/json", "application/yaml")


@pytest.mark.parametrize("name", sorted(NASTY))
def test_nasty_documents_on_every_route_that_parses_one(client, name):
    """Nesting far past Python's recursion limit and a YAML alias bomb: each route that
    parses a document refuses it with a 4xx naming the limit (where the syntax is the
    route's own), and the server goes on augmenting."""
    syntax, document = NASTY[name]
    named = "anchors and aliases" if "bomb" in name else f"deeper than {MAX_NESTING} levels"
    json_named = [named] if syntax == "json" else []  # YAML sent as JSON: refused either way
    media = "application/json" if syntax == "json" else "application/yaml"

    put = client.put("/v1/recipes/nasty", content=document, headers={"Content-Type": media})
    assert_problem(put, 422, "invalid-recipe", named)
    inline = [*one_file("a.jpg", GOOD), ("recipe", (None, document, "application/json"))]
    response = client.post("/v1/augment", params={"seed": 1}, files=inline)
    assert_problem(response, 422, "invalid-recipe", "'recipe' part", *json_named)
    dataset = client.put(
        "/v1/datasets/nasty", content=document, headers={"Content-Type": "application/json"}
    )
    if len(document) > MAX_SPEC_BYTES:  # refused by size before it is parsed
        assert_problem(dataset, 413, "payload-too-large", "dataset registration")
    else:
        assert_problem(dataset, 422, "validation-failed", "dataset registration", *json_named)
    tensors = client.post(
        "/v1/augment",
        params={"recipe": "errs", "seed": 1},
        content=struct.pack("<Q", len(document)) + document,
        headers={"Content-Type": "application/x-safetensors"},
    )
    assert_problem(tensors, 422, "undecodable-image", "safetensors", *json_named)
    assert augment(client, one_file("ok.jpg", GOOD)).status_code == 200


def test_an_inline_recipe_larger_than_a_stored_one_may_be_is_refused(client):
    big = json.dumps(
        {"ops": [{"op": "hflip"}], "output": {"size": [24, 32]}, "x": "a" * MAX_RECIPE_BYTES}
    )
    files = [*one_file("a.jpg", GOOD), ("recipe", (None, big))]
    response = client.post("/v1/augment", params={"seed": 1}, files=files)
    assert_problem(response, 413, "payload-too-large", "'recipe' part", "AUGSVC_MAX_RECIPE_BYTES")


def test_dataset_registrations_are_read_as_strictly_as_recipes(client):
    media = {"Content-Type": "application/json"}
    response = client.put("/v1/datasets/d", content=b'{"kind": "folder"', headers=media)
    assert_problem(response, 422, "validation-failed", "not valid JSON")
    response = client.put("/v1/datasets/d", content=b'{"kind": "tape", "path": "x"}', headers=media)
    body = assert_problem(response, 422, "validation-failed", "body.kind")
    assert body["errors"][0]["loc"] == ["body", "kind"]
    response = client.put("/v1/datasets/d", content=b"x" * 70_000, headers=media)
    assert_problem(response, 413, "payload-too-large", "dataset registration")
    response = client.put(
        "/v1/datasets/d", content=b"kind: folder", headers={"Content-Type": "text/yaml"}
    )
    assert_problem(response, 415, "unsupported-media-type", "application/json")


@pytest.mark.parametrize("path", ["/v1/recipes/bad@ref@@", "/v1/recipes/bad@ref@@/preview"])
def test_malformed_reference_in_paths(client, path):
    assert_problem(client.get(path), 422, "invalid-reference", "bad@ref@@")


def test_malformed_reference_in_augment(client):
    response = augment(client, one_file("a.jpg", GOOD), recipe="bad@ref@@")
    assert_problem(response, 422, "invalid-reference", "bad@ref@@")


def test_unknown_recipe(client):
    assert_problem(client.get("/v1/recipes/nosuch"), 404, "recipe-not-found", "nosuch")
    assert_problem(client.get("/v1/recipes/errs@99"), 404, "recipe-not-found", "errs", "99")
    digest = "sha256:" + "0" * 64
    assert_problem(client.get(f"/v1/recipes/{digest}"), 404, "recipe-not-found", digest)
    response = augment(client, one_file("a.jpg", GOOD), recipe="nosuch")
    assert_problem(response, 404, "recipe-not-found", "nosuch")
    assert_problem(client.delete("/v1/recipes/nosuch"), 404, "recipe-not-found", "nosuch")


def test_stale_if_match(client):
    first = client.put("/v1/recipes/etag", json=RECIPE).json()
    changed = {"ops": [{"op": "vflip"}], "output": {"size": [24, 32]}}
    second = client.put(
        "/v1/recipes/etag", json=changed, headers={"If-Match": f'"{first["digest"]}"'}
    )
    assert second.status_code == 201
    third = {"ops": [{"op": "grayscale"}]}
    stale = client.put("/v1/recipes/etag", json=third, headers={"If-Match": f'"{first["digest"]}"'})
    assert_problem(stale, 412, "precondition-failed", "etag")
    missing = client.put("/v1/recipes/fresh", json=third, headers={"If-Match": "*"})
    assert_problem(missing, 412, "precondition-failed", "fresh")


def test_too_large_body_by_content_length(server, tmp_path):
    """curl sends `Expect: 100-continue`: the 413 arrives before the body is uploaded."""
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (MAX_REQUEST_BYTES + 1))
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", "-H", "Content-Type: application/x-safetensors",
         "--data-binary", f"@{big}", f"{server.url}/v1/augment?recipe=errs"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    body, status = done.stdout.rsplit(b"\n", 1)
    assert int(status) == 413
    problem = json.loads(body)
    assert problem["code"] == "payload-too-large"
    assert str(MAX_REQUEST_BYTES) in problem["detail"]


def test_too_large_body_streamed_without_length(client):
    """A chunked upload has no Content-Length: the bytes are counted as they arrive."""

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"\0" * 65536  # 2.6 MB in all

    response = client.post(
        "/v1/augment",
        params={"recipe": "errs"},
        content=chunks(),
        headers={"Content-Type": "application/x-safetensors"},
    )
    assert_problem(response, 413, "payload-too-large", str(MAX_REQUEST_BYTES))


@pytest.mark.parametrize("seed", ["-1", "abc", str(2**64), "1.5"])
def test_bad_seed(client, seed):
    response = augment(client, one_file("a.jpg", GOOD), seed=seed)
    body = assert_problem(response, 422, "validation-failed", "seed")
    assert body["errors"][0]["loc"] == ["query", "seed"]


def test_bad_format_and_offset(client):
    response = augment(client, one_file("a.jpg", GOOD), format="gif")
    assert_problem(response, 422, "validation-failed", "format")
    response = augment(client, one_file("a.jpg", GOOD), offset=-3)
    assert_problem(response, 422, "validation-failed", "offset")


def test_accept_html_is_not_acceptable(client):
    response = client.post(
        "/v1/augment",
        params={"recipe": "errs", "seed": 1},
        files=one_file("a.jpg", GOOD),
        headers={"Accept": "text/html"},
    )
    assert_problem(response, 406, "not-acceptable", "text/html", "application/zip")


def test_different_output_sizes_need_zip(client):
    files = [*one_file("a.jpg", GOOD), *one_file("b.png", png_bytes(40, 30), "image/png")]
    files.append(("recipe", (None, json.dumps({"ops": [{"op": "hflip"}]}))))
    response = client.post("/v1/augment", params={"seed": 1}, files=files)
    assert_problem(response, 422, "validation-failed", "output.size", "application/zip")
    zipped = client.post(
        "/v1/augment", params={"seed": 1}, files=files, headers={"Accept": "application/zip"}
    )
    assert zipped.status_code == 200


@pytest.mark.parametrize(
    "body, named",
    [
        (b"\x01\x02", "safetensors"),
        (tensor_safetensors((1, 3, 8, 8), dtype="F32"), "uint8"),
        (tensor_safetensors((3, 8, 8)), "4 dimensions"),
        (tensor_safetensors((1, 3, 8, 8), name="pixels"), "'images'"),
    ],
)
def test_bad_safetensors_bodies(client, body, named):
    response = client.post(
        "/v1/augment",
        params={"recipe": "errs", "seed": 1},
        content=body,
        headers={"Content-Type": "application/x-safetensors"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] in ("undecodable-image", "validation-failed")
    assert named in response.json()["detail"]


def test_unknown_route_and_method(client):
    assert_problem(client.get("/v2/nothing"), 404, "not-found", "/v2/nothing")
    response = client.delete("/v1/augment")
    assert_problem(response, 405, "method-not-allowed", "DELETE")
    assert response.headers["Allow"] == "POST"


def test_405_lists_every_method_of_the_path_not_just_the_first_route(client):
    """GET, PUT and DELETE of /v1/recipes/{ref} are separate routes; Starlette alone would
    answer ``Allow: PUT`` (the first that matched the path) and send clients astray."""
    response = client.patch("/v1/recipes/flip")
    assert_problem(response, 405, "method-not-allowed", "PATCH")
    assert response.headers["Allow"] == "GET, PUT, DELETE"
    assert "allowed: GET, PUT, DELETE" in response.json()["detail"]
    assert client.get("/healthz").status_code == 200


def test_full_queue_answers_503_with_retry_after(server):
    """queue_depth=1 and one engine thread: of 8 simultaneous heavy requests, at most 2 are
    admitted at a time; the others are refused at once rather than queued."""
    heavy = {"ops": [{"op": "resize", "size": [180, 240]},
                     {"op": "gaussian_blur", "kernel_size": 31, "p": 1.0}]}  # fmt: skip
    files = [("image", (f"{i}.jpg", jpeg_bytes(240, 180, seed=i), "image/jpeg")) for i in range(2)]
    files.append(("recipe", (None, json.dumps(heavy))))
    results: list[httpx.Response] = []
    barrier = threading.Barrier(8)

    def post() -> None:
        with server.client() as c:
            barrier.wait()
            results.append(c.post("/v1/augment", params={"seed": 1}, files=files))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses and 503 in statuses, statuses
    for response in results:
        if response.status_code == 503:
            assert_problem(response, 503, "overloaded", "queue")
            assert int(response.headers["Retry-After"]) >= 1


def test_float_output_cannot_be_zipped(client):
    normalise = {"ops": [{"op": "normalize", "mean": [0.5] * 3, "std": [0.25] * 3}]}
    files = [*one_file("a.jpg", GOOD), ("recipe", (None, json.dumps(normalise)))]
    zipped = client.post(
        "/v1/augment", params={"seed": 1}, files=files, headers={"Accept": "application/zip"}
    )
    assert_problem(zipped, 422, "validation-failed", "float32", "application/x-safetensors")
    tensors = client.post("/v1/augment", params={"seed": 1}, files=files)
    assert tensors.status_code == 200
