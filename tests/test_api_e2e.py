"""End to end against a real `augsvc serve` on 127.0.0.1, as a new user follows the README:
store a recipe with curl, augment JPEGs, read the results back."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from augsvc.documents import MAX_NESTING
from tests.imagegen import jpeg_bytes
from tests.nasty_documents import deep_json, deep_yaml_block, yaml_alias_bomb

RECIPE = {
    "ops": [
        {"op": "random_resized_crop", "size": [32, 40], "scale": [0.5, 1.0]},
        {"op": "hflip", "p": 0.5},
        {"op": "rotate", "degrees": 10},
        {"op": "color_jitter", "brightness": 0.3, "contrast": 0.2},
    ]
}
OUT_H, OUT_W = 32, 40


@pytest.fixture(scope="module")
def server(start_augsvc):
    return start_augsvc()


@pytest.fixture(scope="module")
def client(server):
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def stored(server, tmp_path_factory) -> dict:
    """The README's first step: PUT a recipe with curl."""
    path = tmp_path_factory.mktemp("recipe") / "flip.json"
    path.write_text(json.dumps(RECIPE))
    out = curl(
        "-X", "PUT", f"{server.url}/v1/recipes/e2e-basic",
        "-H", "Content-Type: application/json", "--data-binary", f"@{path}",
    )  # fmt: skip
    status, body = out.rsplit(b"\n", 1)
    assert int(body) == 201
    return json.loads(status)


def curl(*args: str) -> bytes:
    """curl -sS, printing the status code on a last line (like a shell user would check)."""
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, check=True, timeout=60
    )
    return done.stdout


def photos(tmp_path: Path, n: int = 2) -> list[Path]:
    paths = []
    for i in range(n):
        path = tmp_path / f"photo{i}.jpg"
        path.write_bytes(jpeg_bytes(64, 48, seed=i))
        paths.append(path)
    return paths


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def multipart(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("image", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def test_put_with_curl_returns_the_stored_record(stored):
    assert stored["name"] == "e2e-basic"
    assert stored["version"] == 1
    assert stored["digest"].startswith("sha256:") and len(stored["digest"]) == 71
    assert stored["recipe"]["ops"][0]["size"] == [32, 40]
    assert stored["created_at"].endswith("Z")


def test_curl_augment_two_jpegs_to_a_zip_of_pngs(server, stored, tmp_path):
    a, b = photos(tmp_path)
    url = f"{server.url}/v1/augment?recipe=e2e-basic&seed=7"
    args = ["-H", "Accept: application/zip", "-F", f"image=@{a}", "-F", f"image=@{b}", url]
    first = curl("-D", str(tmp_path / "headers.txt"), *args)
    body, status = first.rsplit(b"\n", 1)
    assert int(status) == 200
    files = unzip(body)
    assert sorted(files) == ["000000.png", "000001.png"]
    for data in files.values():
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            assert image.size == (OUT_W, OUT_H)
            assert image.mode == "RGB"
    headers = (tmp_path / "headers.txt").read_text().lower()
    assert "x-augsvc-seed: 7" in headers
    assert f"x-augsvc-recipe-digest: {stored['digest']}" in headers
    assert "content-type: application/zip" in headers
    # The same request again: the same bytes.
    assert curl(*args) == first
    # Different images -> different outputs; the two samples differ from each other.
    assert files["000000.png"] != files["000001.png"]


def test_random_seed_is_returned_and_repeating_it_repeats_the_bytes(client, stored, tmp_path):
    files = multipart(photos(tmp_path))
    headers = {"Accept": "application/zip"}
    first = client.post("/v1/augment", params={"recipe": "e2e-basic"}, files=files, headers=headers)
    assert first.status_code == 200, first.text
    seed = int(first.headers["X-Augsvc-Seed"])
    assert 0 <= seed < 2**63
    again = client.post(
        "/v1/augment", params={"recipe": "e2e-basic", "seed": seed}, files=files, headers=headers
    )
    assert again.content == first.content
    other = client.post(
        "/v1/augment",
        params={"recipe": "e2e-basic", "seed": seed + 1},
        files=files,
        headers=headers,
    )
    assert other.content != first.content


def test_safetensors_in_and_out_with_params(client, stored):
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (3, 3, 48, 64), dtype=np.uint8))
    body = save_safetensors({"images": images})
    response = client.post(
        "/v1/augment",
        params={"recipe": "e2e-basic", "seed": 11, "offset": 100},
        content=body,
        headers={"Content-Type": "application/x-safetensors"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-safetensors"  # the default
    assert response.headers["X-Augsvc-Offset"] == "100"
    tensors = load_safetensors(response.content)
    repeated = client.post(
        "/v1/augment",
        params={"recipe": "e2e-basic", "seed": 11, "offset": 100},
        content=body,
        headers={"Content-Type": "application/x-safetensors"},
    )
    assert repeated.content == response.content  # metadata order included
    assert tensors["images"].dtype == torch.uint8
    assert tuple(tensors["images"].shape) == (3, 3, OUT_H, OUT_W)
    assert tensors["keys"].dtype == torch.int64
    assert tensors["keys"].tolist() == [100, 101, 102]
    matrix = tensors["params.matrix"]
    assert tuple(matrix.shape) == (3, 3, 3) and matrix.dtype == torch.float64
    assert torch.allclose(matrix[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    applied = tensors["params.ops.1.applied"]
    assert applied.dtype == torch.uint8 and set(applied.tolist()) <= {0, 1}
    with_meta = response.content
    header_len = int.from_bytes(with_meta[:8], "little")
    metadata = json.loads(with_meta[8 : 8 + header_len])["__metadata__"]
    assert metadata == {"seed": "11", "offset": "100", "digest": stored["digest"]}

    # A sample's bytes depend on its key, not on its batch: image 2 alone at offset 102.
    alone = client.post(
        "/v1/augment",
        params={"recipe": "e2e-basic", "seed": 11, "offset": 102, "return_params": "false"},
        content=save_safetensors({"images": images[2:].clone()}),
        headers={"Content-Type": "application/x-safetensors"},
    )
    single = load_safetensors(alone.content)
    assert set(single) == {"images", "keys"}
    assert torch.equal(single["images"][0], tensors["images"][2])


def test_jpeg_zip_and_inline_recipe(client, tmp_path):
    files = multipart(photos(tmp_path, 3))
    files.append(("recipe", (None, json.dumps({"ops": [{"op": "resize", "size": [24, 30]}]}))))
    response = client.post(
        "/v1/augment",
        params={"seed": 1, "format": "jpeg"},
        files=files,
        headers={"Accept": "application/zip"},
    )
    assert response.status_code == 200, response.text
    assert "X-Augsvc-Recipe" not in response.headers  # inline: nothing stored
    out = unzip(response.content)
    assert sorted(out) == ["000000.jpg", "000001.jpg", "000002.jpg"]
    for data in out.values():
        with Image.open(io.BytesIO(data)) as image:
            assert (image.format, image.size) == ("JPEG", (30, 24))


def test_recipe_lifecycle_versions_etags_and_refs(client):
    doc = {"ops": [{"op": "hflip"}], "output": {"size": [16, 16]}}
    created = client.put("/v1/recipes/e2e-life", json=doc)
    assert created.status_code == 201
    v1 = created.json()
    assert created.headers["ETag"] == f'"{v1["digest"]}"'
    assert created.headers["Location"] == "/v1/recipes/e2e-life/versions/1"

    same = client.put("/v1/recipes/e2e-life", json=doc)  # identical content: same version
    assert same.status_code == 200 and same.json()["version"] == 1

    yaml_doc = "ops:\n  - op: vflip\noutput:\n  size: [16, 16]\n"
    v2 = client.put(
        "/v1/recipes/e2e-life",
        content=yaml_doc,
        headers={"Content-Type": "application/yaml", "If-Match": f'"{v1["digest"]}"'},
    )
    assert v2.status_code == 201, v2.text
    assert v2.json()["version"] == 2 and v2.json()["recipe"]["ops"][0]["op"] == "vflip"

    assert client.get("/v1/recipes/e2e-life").json()["version"] == 2
    assert client.get("/v1/recipes/e2e-life@1").json()["digest"] == v1["digest"]
    assert client.get(f"/v1/recipes/{v1['digest']}").json()["version"] == 1
    assert client.get("/v1/recipes/e2e-life/versions/1").json()["digest"] == v1["digest"]
    listed = client.get("/v1/recipes/e2e-life/versions").json()
    assert [v["version"] for v in listed["versions"]] == [1, 2]
    names = [r["name"] for r in client.get("/v1/recipes").json()["recipes"]]
    assert "e2e-life" in names

    cached = client.get("/v1/recipes/e2e-life@1", headers={"If-None-Match": f'"{v1["digest"]}"'})
    assert cached.status_code == 304 and cached.content == b""

    assert client.delete("/v1/recipes/e2e-life").status_code == 204
    assert client.get("/v1/recipes/e2e-life").status_code == 404
    again = client.put("/v1/recipes/e2e-life", json=doc)
    assert again.status_code == 201 and again.json()["version"] == 3  # never reused


def test_ops_catalogue(client):
    response = client.get("/v1/ops")
    assert response.status_code == 200
    ops = {op["op"]: op for op in response.json()["ops"]}
    assert {"rotate", "random_resized_crop", "color_jitter", "normalize"} <= set(ops)
    assert "degrees" in ops["rotate"]["schema"]["properties"]


def test_preview_grid_of_the_sample_photo_and_of_an_upload(client, stored):
    response = client.get("/v1/recipes/e2e-basic/preview", params={"n": 4, "seed": 3})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as grid:
        gap = 4  # 2x2 cells of 32x40 with 4-pixel gaps
        assert grid.size == (2 * OUT_W + 3 * gap, 2 * OUT_H + 3 * gap)
    again = client.get("/v1/recipes/e2e-basic/preview", params={"n": 4, "seed": 3})
    assert again.content == response.content

    upload = client.post(
        "/v1/recipes/e2e-basic/preview",
        params={"n": 1},
        files=[("image", ("mine.jpg", jpeg_bytes(64, 48), "image/jpeg"))],
    )
    assert upload.status_code == 200, upload.text
    with Image.open(io.BytesIO(upload.content)) as grid:
        assert grid.size == (OUT_W + 8, OUT_H + 8)
    too_many = client.get("/v1/recipes/e2e-basic/preview", params={"n": 65})
    assert too_many.status_code == 422


def test_readyz_and_metrics(client, stored, tmp_path):
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["store"] == "ok" and ready.json()["device"] == "cpu"
    files = multipart(photos(tmp_path, 2))
    client.post("/v1/augment", params={"recipe": "e2e-basic", "seed": 1}, files=files)
    text = client.get("/metrics").text
    assert 'augsvc_http_requests_total{method="POST",route="/v1/augment",status="200"}' in text
    images = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("augsvc_images_augmented_total ")
    )
    assert images >= 2
    assert "augsvc_augment_batch_size_bucket" in text
    assert "augsvc_engine_queue_depth" in text
    assert "augsvc_plan_cache_hits_total" in text


def test_healthz_stays_responsive_during_a_big_batch(server, client, stored):
    """A batch that keeps the engine busy for seconds must not stall the event loop."""
    big = torch.zeros((48, 3, 480, 640), dtype=torch.uint8)
    heavy = {"ops": [{"op": "rotate", "degrees": 30}, {"op": "gaussian_blur", "kernel_size": 9}]}
    assert client.put("/v1/recipes/e2e-heavy", json=heavy).status_code == 201
    done: dict[str, float] = {}

    def post_big() -> None:
        started = time.perf_counter()
        with server.client() as other:
            response = other.post(
                "/v1/augment",
                params={"recipe": "e2e-heavy", "seed": 0},
                content=save_safetensors({"images": big}),
                headers={"Content-Type": "application/x-safetensors"},
            )
        assert response.status_code == 200
        done["big_s"] = time.perf_counter() - started

    worker = threading.Thread(target=post_big)
    worker.start()
    time.sleep(0.3)
    latencies = []
    while worker.is_alive() and len(latencies) < 20:
        started = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        latencies.append(time.perf_counter() - started)
        time.sleep(0.05)
    worker.join()
    assert latencies, "the big batch finished before /healthz was asked"
    assert done["big_s"] > max(latencies)
    assert max(latencies) < 0.5, latencies


def test_cli_recipe_and_augment_match_the_service(server, client, stored, tmp_path):
    recipe_file = tmp_path / "cli.yaml"
    recipe_file.write_text("ops:\n  - op: hflip\n  - op: resize\n    size: [20, 24]\n")
    cli = [sys.executable, "-m", "augsvc.cli"]
    put = subprocess.run(
        [*cli, "recipe", "--url", server.url, "put", "e2e-cli", str(recipe_file)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["version"] == 1
    got = subprocess.run(
        [*cli, "recipe", "--url", server.url, "get", "e2e-cli@1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert json.loads(got.stdout)["recipe"]["ops"][1]["size"] == [20, 24]
    missing = subprocess.run(
        [*cli, "recipe", "--url", server.url, "get", "nope"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 1 and "recipe-not-found" in missing.stderr

    paths = photos(tmp_path, 2)
    out = tmp_path / "out"
    local = subprocess.run(
        [*cli, "augment", "--recipe", str(recipe_file), "--seed", "5", "--device", "cpu",
         "--out", str(out), *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr
    remote = client.post(
        "/v1/augment",
        params={"recipe": "e2e-cli@1", "seed": 5},
        files=multipart(paths),
        headers={"Accept": "application/zip"},
    )
    files = unzip(remote.content)
    assert (out / "000000.png").read_bytes() == files["000000.png"]
    assert (out / "000001.png").read_bytes() == files["000001.png"]


def test_cli_reports_a_broken_recipe_file_without_a_traceback(tmp_path):
    """A recipe file with a syntax error, non-UTF-8 bytes, a NaN, nesting past the limit
    or YAML aliases gets one line naming the file and the problem, exit status 1, and no
    traceback."""
    cli = [sys.executable, "-m", "augsvc.cli"]
    image = photos(tmp_path, 1)[0]
    cases = {
        "broken.yaml": (b"ops: [", "is not valid YAML"),
        "binary.json": (b"\xff\xfe", "is not valid JSON"),
        "nan.yaml": (b"ops:\n  - op: rotate\n    degrees: .nan\n", "finite"),
        "nan.json": (b'{"ops": [{"op": "rotate", "degrees": NaN}]}', "finite"),
        "deep.json": (deep_json(100_000), f"deeper than {MAX_NESTING} levels"),
        "deep.yaml": (deep_yaml_block(1000), f"deeper than {MAX_NESTING} levels"),
        "bomb.yaml": (yaml_alias_bomb(), "anchors and aliases"),
    }
    for name, (content, words) in cases.items():
        recipe = tmp_path / name
        recipe.write_bytes(content)
        run = subprocess.run(
            [*cli, "augment", "--recipe", str(recipe), "--out", str(tmp_path / "out"),
             str(image)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode == 1, (name, run.stderr)
        assert words in run.stderr and "Traceback" not in run.stderr, (name, run.stderr)
        assert not (tmp_path / "out").exists()


def test_cli_recipe_put_of_a_nested_or_aliased_file_prints_the_servers_reason(server, tmp_path):
    """``augsvc recipe put`` sends the file as it is; the server's 422 comes back as a line."""
    cli = [sys.executable, "-m", "augsvc.cli", "recipe", "--url", server.url, "put", "nasty"]
    cases = {
        "deep.json": (deep_json(1000), f"deeper than {MAX_NESTING} levels"),
        "bomb.yaml": (yaml_alias_bomb(), "anchors and aliases"),
    }
    for name, (content, words) in cases.items():
        recipe = tmp_path / name
        recipe.write_bytes(content)
        run = subprocess.run([*cli, str(recipe)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, (name, run.stderr)
        assert "invalid-recipe" in run.stderr and words in run.stderr, (name, run.stderr)
        assert "Traceback" not in run.stderr
