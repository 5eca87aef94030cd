"""Decompression amplification against a real server: small requests of huge, highly
compressible images are refused from their headers, quickly, while the server's memory
stays flat, and requests together cannot hold more decoded pixels than the budget."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.imagegen import jpeg_bytes, tensor_safetensors

RECIPE = {"ops": [{"op": "resize", "size": [32, 32]}]}
GOOD = jpeg_bytes(64, 48)
#: Peak RSS a server may gain while it refuses requests by their headers: their bodies
#: (a few MB each, parsed and copied a few times) and allocator slack, never their
#: pixels. One 6000x6000 image decoded would be 108 MB, the whole attack below ~14 GB.
REFUSAL_RSS_BOUND = 256 * 2**20

# A small budget for the admission tests: two 2500x1500 images (7.5 megapixels) per
# request fit the per-request limit, two such requests do not fit the budget together.
SMALL_REQUEST_PIXELS = 8_000_000
SMALL_INFLIGHT_PIXELS = 12_000_000


def vm_status(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in bytes, from /proc/<pid>/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def black_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def pngs(data: bytes, count: int) -> list:
    return [("image", (f"black{i}.png", data, "image/png")) for i in range(count)]


def post_at_once(server, count: int, send) -> list[tuple[httpx.Response, float]]:
    """``count`` threads call ``send(client)`` together; (response, seconds) each."""
    results: list[tuple[httpx.Response, float]] = []
    barrier = threading.Barrier(count)

    def one() -> None:
        with server.client() as client:
            barrier.wait()
            started = time.monotonic()
            response = send(client)
            results.append((response, time.monotonic() - started))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def assert_still_serving(client: httpx.Client) -> None:
    files = [("image", ("ok.jpg", GOOD, "image/jpeg"))]
    response = client.post("/v1/augment", params={"recipe": "small", "seed": 1}, files=files)
    assert response.status_code == 200, response.text
    assert response.headers["X-Augsvc-Count"] == "1"


# --- default settings ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(start_augsvc):
    srv = start_augsvc()
    with srv.client() as client:
        assert client.put("/v1/recipes/small", json=RECIPE).status_code == 201
        assert_still_serving(client)  # warm: the baseline includes a served request
    return srv


def test_many_huge_black_pngs_get_a_413_in_a_second_and_memory_stays_flat(server, black_png_36mp):
    """16 black 36-megapixel PNGs are a 1.7 MB request that decodes to 1.7 GB; eight of
    them at once would be 14 GB. Each is refused from its headers, nothing is decoded."""
    assert len(black_png_36mp) < 200_000
    baseline = vm_status(server.process.pid)["VmHWM"]
    with server.client() as client:
        started = time.monotonic()
        response = client.post(
            "/v1/augment", params={"recipe": "small", "seed": 1}, files=pngs(black_png_36mp, 16)
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 413, response.text
    problem = response.json()
    assert problem["code"] == "payload-too-large"
    assert str(16 * 36_000_000) in problem["detail"]
    assert "16 images" in problem["detail"] and "AUGSVC_MAX_REQUEST_PIXELS" in problem["detail"]
    assert elapsed < 1.0, elapsed

    results = post_at_once(
        server,
        8,
        lambda c: c.post(
            "/v1/augment", params={"recipe": "small", "seed": 1}, files=pngs(black_png_36mp, 16)
        ),
    )
    for answer, seconds in results:
        assert answer.status_code in (413, 503), answer.text
        assert answer.json()["code"] in ("payload-too-large", "overloaded")
        assert seconds < 1.0, seconds
    assert vm_status(server.process.pid)["VmHWM"] - baseline < REFUSAL_RSS_BOUND
    with server.client() as client:
        assert_still_serving(client)


def test_a_preview_counts_its_n_copies(server):
    """One 2000x2000 upload previewed 64 times is 260 megapixels."""
    image = black_png(2000, 2000)
    with server.client() as client:
        response = client.post(
            "/v1/recipes/small/preview",
            params={"n": 64},
            content=image,
            headers={"Content-Type": "image/png"},
        )
        assert response.status_code == 413, response.text
        detail = response.json()["detail"]
        assert "n=64" in detail and "2000x2000" in detail and "AUGSVC_MAX_REQUEST_PIXELS" in detail
        small = client.post(
            "/v1/recipes/small/preview",
            params={"n": 2},
            content=image,
            headers={"Content-Type": "image/png"},
        )
        assert small.status_code == 200, small.text
        assert small.headers["content-type"] == "image/png"
        assert client.get("/v1/recipes/small/preview", params={"n": 64}).status_code == 200


# --- a small budget ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("budget-data")
    image = black_png(2500, 1500)
    for i in range(3):
        (root / "big" / "a").mkdir(parents=True, exist_ok=True)
        (root / "big" / "a" / f"{i}.png").write_bytes(image)
    return root


@pytest.fixture(scope="module")
def small_budget(start_augsvc, data_root):
    srv = start_augsvc(
        AUGSVC_MAX_REQUEST_PIXELS=str(SMALL_REQUEST_PIXELS),
        AUGSVC_MAX_INFLIGHT_PIXELS=str(SMALL_INFLIGHT_PIXELS),
        AUGSVC_ENGINE_THREADS="4",
        AUGSVC_DATA_ROOTS=str(data_root),
    )
    with srv.client() as client:
        assert client.put("/v1/recipes/small", json=RECIPE).status_code == 201
        slow = {"ops": [{"op": "rotate", "degrees": 30}, {"op": "gaussian_blur",
                "kernel_size": 9, "p": 1.0}, {"op": "resize", "size": [30, 50]}]}  # fmt: skip
        assert client.put("/v1/recipes/slow", json=slow).status_code == 201
        spec = {"kind": "folder", "path": str(data_root / "big")}
        assert client.put("/v1/datasets/big", json=spec).status_code == 201
    return srv


def test_requests_together_cannot_hold_more_than_the_budget(small_budget):
    """Four engine threads, six requests of 7.5 megapixels, a budget of 12: one holds the
    budget at a time, the others that find it taken get a 503 at once."""
    files = pngs(black_png(2500, 1500), 2)
    results = post_at_once(
        small_budget,
        6,
        lambda c: c.post("/v1/augment", params={"recipe": "slow", "seed": 1}, files=files),
    )
    statuses = sorted(r.status_code for r, _ in results)
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses and 503 in statuses, statuses
    for response, seconds in results:
        if response.status_code == 503:
            problem = response.json()
            assert problem["code"] == "overloaded"
            if "AUGSVC_MAX_INFLIGHT_PIXELS" in problem["detail"]:  # not the queue's 503
                assert "7500000 decoded pixels" in problem["detail"]
                assert seconds < 1.0, seconds
            assert int(response.headers["Retry-After"]) >= 1
    with small_budget.client() as client:
        metrics = client.get("/metrics").text
        assert "augsvc_decoded_pixels_held 0.0" in metrics
        rejected = [line for line in metrics.splitlines() if line.startswith(
            "augsvc_decoded_pixels_rejected_total")]  # fmt: skip
        assert float(rejected[0].split()[1]) >= 1
        assert_still_serving(client)


def test_a_safetensors_body_costs_its_shape(small_budget):
    body = tensor_safetensors((1, 1, 3000, 3000))
    with small_budget.client() as client:
        response = client.post(
            "/v1/augment",
            params={"recipe": "small", "seed": 1},
            content=body,
            headers={"Content-Type": "application/x-safetensors"},
        )
        assert response.status_code == 413, response.text
        assert str(9_000_000) in response.json()["detail"]
        assert "AUGSVC_MAX_REQUEST_PIXELS" in response.json()["detail"]
        assert_still_serving(client)


def test_a_stream_batch_over_the_limit_ends_the_stream_with_a_413_frame(small_budget):
    from augsvc_client import Client
    from augsvc_client.errors import PayloadTooLarge

    with Client(small_budget.url) as client:
        batches = list(client.stream("big", "small", seed=0, batch_size=2))
        assert [len(b.indices) for b in batches] == [2, 1]
        assert batches[0].images.shape == (2, 3, 32, 32)
        with pytest.raises(PayloadTooLarge, match="AUGSVC_MAX_REQUEST_PIXELS"):
            list(client.stream("big", "small", seed=0, batch_size=3))
    with small_budget.client() as client:
        assert json.loads(client.get("/healthz").text) == {"status": "ok"}
