"""Memory amplification against a real server at its default limits: small requests that
would make the server hold gigabytes (huge compressible images, huge outputs, previews of
many tiles, stream frames, masks) are refused from their headers and plan, cheaply, while
the server's memory stays flat; and jobs together cannot hold more than the budget.

"Cheaply" is measured as the server's own CPU time, not the wall clock: a loaded
machine stretches the wall clock of any request, but not the CPU a refusal spends, and
decoding what these requests describe would spend seconds of it."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.imagegen import jpeg_bytes, tensor_safetensors

RECIPE = {"ops": [{"op": "resize", "size": [32, 32]}]}
GOOD = jpeg_bytes(64, 48)
#: Peak RSS a server may gain while it refuses requests by their headers and plan: their
#: bodies (a few MB each, parsed and copied a few times) and allocator slack, never their
#: pixels. Each attack below reached gigabytes before it was refused up front.
REFUSAL_RSS_BOUND = 300 * 2**20
#: Server CPU seconds a refusal may spend: it parses the body, reads headers and draws
#: parameters, and decodes nothing (decoding any of these would take several seconds).
REFUSAL_CPU_S = 1.0

# A small budget for the admission tests: one request of two 2500x1500 PNGs resized
# small is a job of 129 MiB (most of it the engine's float copies of the inputs), three
# such images are 193 MiB, more than a job may hold; two two-image requests do not fit
# the budget together.
SMALL_JOB_BYTES = 160 * 2**20
SMALL_INFLIGHT_BYTES = 200 * 2**20


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def cpu_spent(pid: int, bound: float) -> Iterator[None]:
    """The server spends less than ``bound`` CPU seconds in the ``with`` block."""
    before = cpu_seconds(pid)
    yield
    spent = cpu_seconds(pid) - before
    assert spent < bound, f"the server spent {spent:.2f} CPU s"


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


def post_at_once(server, count: int, send) -> list[httpx.Response]:
    """``count`` threads call ``send(client)`` together; their responses."""
    results: list[httpx.Response] = []
    barrier = threading.Barrier(count)

    def one() -> None:
        with server.client() as client:
            barrier.wait()
            results.append(send(client))

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
        for name, side in (("r8000", 8000), ("r2048", 2048)):
            assert client.put(f"/v1/recipes/{name}", json=sized(side)).status_code == 201
        assert_still_serving(client)  # warm: the baseline includes a served request
    return srv


def test_many_huge_black_pngs_get_a_cheap_413_and_memory_stays_flat(server, black_png_36mp):
    """16 black 36-megapixel PNGs are a 1.7 MB request that decodes to 1.7 GB; eight of
    them at once would be 14 GB. Each is refused from its headers, nothing is decoded."""
    assert len(black_png_36mp) < 200_000
    baseline = vm_status(server.process.pid)["VmHWM"]
    with server.client() as client, cpu_spent(server.process.pid, REFUSAL_CPU_S):
        response = client.post(
            "/v1/augment", params={"recipe": "small", "seed": 1}, files=pngs(black_png_36mp, 16)
        )
    assert response.status_code == 413, response.text
    problem = response.json()
    assert problem["code"] == "payload-too-large"
    decoded = 16 * 36_000_000 * 3 / 2**20  # and the encoded files, read once more
    inputs = float(problem["detail"].split("decoded inputs ")[1].split(" MiB")[0])
    assert decoded < inputs < decoded + 16 * len(black_png_36mp) / 2**20 + 0.1, problem
    assert "16 images" in problem["detail"] and "AUGSVC_MAX_JOB_BYTES" in problem["detail"]

    # Eight at once: each is over what one job may hold, which no amount of waiting
    # changes, so each is that same 413 (never a 503), within the engine queue's room.
    with cpu_spent(server.process.pid, 8 * REFUSAL_CPU_S):
        results = post_at_once(
            server,
            8,
            lambda c: c.post(
                "/v1/augment", params={"recipe": "small", "seed": 1},
                files=pngs(black_png_36mp, 16),
            ),
        )  # fmt: skip
    assert [answer.status_code for answer in results] == [413] * 8
    assert {answer.json()["detail"] for answer in results} == {problem["detail"]}
    assert vm_status(server.process.pid)["VmHWM"] - baseline < REFUSAL_RSS_BOUND
    with server.client() as client:
        assert_still_serving(client)


def test_a_preview_counts_its_n_copies(server):
    """One 3000x3000 upload previewed 64 times decodes 576 megapixels: 413 naming n."""
    image = black_png(3000, 3000)
    with server.client() as client:
        response = client.post(
            "/v1/recipes/small/preview",
            params={"n": 64},
            content=image,
            headers={"Content-Type": "image/png"},
        )
        assert response.status_code == 413, response.text
        detail = response.json()["detail"]
        assert "n=64" in detail and "AUGSVC_MAX_JOB_BYTES" in detail and "lower n" in detail
        small = client.post(
            "/v1/recipes/small/preview",
            params={"n": 2},
            content=image,
            headers={"Content-Type": "image/png"},
        )
        assert small.status_code == 200, small.text
        assert small.headers["content-type"] == "image/png"
        assert client.get("/v1/recipes/small/preview", params={"n": 64}).status_code == 200


# --- what a job would hold, refused before it is allocated ---------------------------------


def reset_peak(pid: int) -> int:
    """Reset the process's peak RSS (VmHWM) to its current RSS; return that RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return vm_status(pid)["VmRSS"]


def refused(server, send, status: int = 413) -> dict:
    """``send(client)`` is answered ``status`` for less than REFUSAL_CPU_S of server CPU
    while the server's peak RSS grows by less than REFUSAL_RSS_BOUND; the problem."""
    start = reset_peak(server.process.pid)
    with server.client() as client, cpu_spent(server.process.pid, REFUSAL_CPU_S):
        response = send(client)
    assert response.status_code == status, response.text
    growth = vm_status(server.process.pid)["VmHWM"] - start
    assert growth < REFUSAL_RSS_BOUND, growth
    return response.json()


def inline(recipe: dict, images: list) -> list:
    return [("recipe", (None, json.dumps(recipe), "application/json")), *images]


def sized(side: int, ops: list | None = None) -> dict:
    return {"ops": ops or [], "output": {"size": [side, side]}}


@pytest.mark.parametrize("side", [16000, 12000, 8000])
def test_one_small_image_asked_for_at_a_huge_output_is_a_413_naming_the_output(server, side):
    problem = refused(
        server,
        lambda c: c.post("/v1/augment", params={"seed": 1},
                         files=inline(sized(side), [("image", ("a.jpg", GOOD, "image/jpeg"))])),
    )  # fmt: skip
    assert problem["code"] == "payload-too-large"
    assert "AUGSVC_MAX_JOB_BYTES" in problem["detail"] and "lower the output size" in problem[
        "detail"]  # fmt: skip
    with server.client() as client:
        assert_still_serving(client)


def test_a_batch_of_large_outputs_is_refused_as_a_whole(server):
    images = [("image", (f"{i}.jpg", GOOD, "image/jpeg")) for i in range(64)]
    problem = refused(
        server, lambda c: c.post("/v1/augment", params={"recipe": "r2048"}, files=images)
    )
    assert "the request's 64 images" in problem["detail"]


def test_previews_of_huge_outputs_or_many_tiles_are_413s_naming_what_to_lower(server):
    draft = refused(
        server,
        lambda c: c.post("/v1/preview", params={"n": 1},
                         files={"recipe": (None, json.dumps(sized(16000)), "application/json")}),
    )  # fmt: skip
    assert "the preview (n=1" in draft["detail"]
    stored = refused(server, lambda c: c.get("/v1/recipes/r8000/preview", params={"n": 4}))
    assert "lower n" in stored["detail"]
    many = refused(server, lambda c: c.get("/v1/recipes/r2048/preview", params={"n": 64}))
    assert "n=64" in many["detail"]
    with server.client() as client:
        fine = client.get("/v1/recipes/small/preview", params={"n": 64})
        assert fine.status_code == 200 and fine.headers["content-type"] == "image/png"


def mask16(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("I;16", (width, height)).save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def test_masks_are_checked_from_their_headers_before_any_is_decoded(server):
    """64 one-pixel images with 64 16-bit 6000x6000 masks: 9 GB decoded, a 4.5 MB body."""
    mask = mask16(6000, 6000)
    assert len(mask) < 200_000
    one_pixel = black_png(1, 1)
    files = [("image", (f"{i}.png", one_pixel, "image/png")) for i in range(64)]
    files += [("masks", (f"{i}.png", mask, "image/png")) for i in range(64)]
    problem = refused(
        server, lambda c: c.post("/v1/augment", params={"recipe": "small"}, files=files), 422
    )
    assert "mask 0 is 6000x6000 (HxW) but its image is 1x1" in problem["detail"]
    # masks of their images' size are counted in the job: too much for one job
    big = black_png(6000, 6000)
    files = [("image", (f"{i}.png", big, "image/png")) for i in range(8)]
    files += [("masks", (f"{i}.png", mask, "image/png")) for i in range(8)]
    problem = refused(server, lambda c: c.post("/v1/augment", params={"recipe": "small"},
                                               files=files))  # fmt: skip
    assert "masks" in problem["detail"] and "AUGSVC_MAX_JOB_BYTES" in problem["detail"]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stream-data")
    for i in range(4):
        (root / "photos" / "a").mkdir(parents=True, exist_ok=True)
        (root / "photos" / "a" / f"{i}.jpg").write_bytes(jpeg_bytes(64, 48))
    # a COCO file that declares its 50x40 image 6000x6000 (within AUGSVC_MAX_IMAGE_PIXELS,
    # which registration holds declared sizes to): rasterising its masks at the declared
    # size would hold about 250 MB
    (root / "coco").mkdir()
    (root / "coco" / "0.png").write_bytes(black_png(50, 40))
    document = {
        "images": [{"id": 1, "file_name": "0.png", "width": 6000, "height": 6000}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5],
                         "segmentation": [[1, 1, 6, 1, 6, 6]]}],
        "categories": [{"id": 1, "name": "thing"}],
    }  # fmt: skip
    (root / "instances.json").write_text(json.dumps(document))
    return root


@pytest.fixture(scope="module")
def dataset_server(start_augsvc, photo_folder):
    srv = start_augsvc(AUGSVC_DATA_ROOTS=str(photo_folder))
    with srv.client() as client:
        spec = {"kind": "folder", "path": str(photo_folder / "photos")}
        assert client.put("/v1/datasets/photos", json=spec).status_code == 201
        assert client.put("/v1/recipes/r8000", json=sized(8000)).status_code == 201
        assert client.put("/v1/recipes/small", json=RECIPE).status_code == 201
        spec = {"kind": "coco", "path": str(photo_folder / "coco"),
                "annotations": str(photo_folder / "instances.json")}  # fmt: skip
        assert client.put("/v1/datasets/lies", json=spec).status_code == 201
    return srv


def test_a_coco_image_whose_declared_size_is_not_its_files_ends_with_a_typed_frame(
    dataset_server,
):
    from augsvc_client import Client
    from augsvc_client.errors import ValidationFailed

    start = reset_peak(dataset_server.process.pid)
    with (
        cpu_spent(dataset_server.process.pid, REFUSAL_CPU_S),
        Client(dataset_server.url) as client,
        pytest.raises(ValidationFailed) as err,
    ):
        list(client.stream("lies", "small", seed=0, batch_size=1))
    assert "declare it 6000x6000, but the file is 50x40" in str(err.value)
    assert vm_status(dataset_server.process.pid)["VmHWM"] - start < REFUSAL_RSS_BOUND


def test_a_stream_whose_frames_could_never_fit_is_refused_before_its_first_frame(dataset_server):
    """batch_size 64 of 8000x8000 outputs: a 12 GB frame, refused as an HTTP 413."""
    params = {"recipe": "r8000", "seed": 0, "batch_size": 64}
    problem = refused(dataset_server, lambda c: c.get("/v1/datasets/photos/stream", params=params))
    assert "batch_size" in problem["detail"] and "AUGSVC_MAX_JOB_BYTES" in problem["detail"]
    with dataset_server.client() as client:  # the stream's hold was given back
        ok = client.get("/v1/datasets/photos/stream",
                        params={"recipe": "small", "seed": 0, "batch_size": 4})  # fmt: skip
        assert ok.status_code == 200 and len(ok.content) > 4 * 32 * 32 * 3
        assert client.get("/readyz").json()["memory_held_bytes"] == 0


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
        AUGSVC_MAX_JOB_BYTES=str(SMALL_JOB_BYTES),
        AUGSVC_MAX_INFLIGHT_BYTES=str(SMALL_INFLIGHT_BYTES),
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


#: How the budget names a two-image request it has no room for.
SLOW_PAIR_NEEDS = "the request's 2 images needs"


def rejected_total(server) -> float:
    """The server's count of jobs the memory budget refused with a 503."""
    with server.client() as client:
        metrics = client.get("/metrics").text
    (line,) = [x for x in metrics.splitlines() if x.startswith("augsvc_memory_rejected_total")]
    return float(line.split()[1])


def test_requests_together_are_served_or_refused_with_a_503(small_budget):
    """Four engine threads, six requests that each fit a job, a budget that holds one:
    whichever is admitted first is served; one that finds the budget taken gets a 503
    naming the setting (how many do depends on timing; the test below holds the budget
    for certain), and every hold is given back."""
    files = pngs(black_png(2500, 1500), 2)
    before = rejected_total(small_budget)
    results = post_at_once(
        small_budget,
        6,
        lambda c: c.post("/v1/augment", params={"recipe": "slow", "seed": 1}, files=files),
    )
    served = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code != 200]
    assert served, [r.text for r in refused]
    assert all(r.status_code == 503 for r in refused), [r.text for r in refused]
    assert {r.json()["code"] for r in refused} <= {"overloaded"}
    assert all(SLOW_PAIR_NEEDS in r.json()["detail"] for r in refused)
    assert all("AUGSVC_MAX_INFLIGHT_BYTES" in r.json()["detail"] for r in refused)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert len({r.content for r in served}) == 1  # the same answer, however admitted
    assert rejected_total(small_budget) - before == len(refused)
    with small_budget.client() as client:
        assert "augsvc_memory_held_bytes 0.0" in client.get("/metrics").text
        assert_still_serving(client)


def test_a_safetensors_body_costs_its_shape(small_budget):
    body = tensor_safetensors((1, 3, 4500, 4500))  # 61 MB, under the body limit
    with small_budget.client() as client:
        response = client.post(
            "/v1/augment",
            params={"recipe": "small", "seed": 1},
            content=body,
            headers={"Content-Type": "application/x-safetensors"},
        )
        assert response.status_code == 413, response.text
        detail = response.json()["detail"]
        assert "AUGSVC_MAX_JOB_BYTES" in detail
        # the body holds the pixels already: only the engine's copies and the output count
        assert "decoded inputs" not in detail and "engine working copies" in detail
        assert_still_serving(client)


def test_a_stream_batch_over_the_limit_ends_the_stream_with_a_413_frame(small_budget):
    from augsvc_client import Client
    from augsvc_client.errors import PayloadTooLarge

    with Client(small_budget.url) as client:
        batches = list(client.stream("big", "small", seed=0, batch_size=2))
        assert [len(b.indices) for b in batches] == [2, 1]
        assert batches[0].images.shape == (2, 3, 32, 32)
        with pytest.raises(PayloadTooLarge, match="AUGSVC_MAX_JOB_BYTES"):
            list(client.stream("big", "small", seed=0, batch_size=3))
    with small_budget.client() as client:
        assert json.loads(client.get("/healthz").text) == {"status": "ok"}


# --- a budget held by an open stream -------------------------------------------------------

#: An open stream holds the frames it renders ahead (prefetch + 1) for its whole life: with
#: 16 ahead, batches of BATCH images at TILE x TILE, 69 MiB of a 160 MiB budget; the
#: two-image "slow" request (129 MiB) fits the budget alone but not beside it, while the
#: stream's own batches (66 MiB each) fit beside its hold.
HELD_BUDGET_BYTES = 160 * 2**20
PREFETCH, TILE, BATCH = 16, 256, 16
#: The least a stream of these frames holds: its frames' pixels, without their headers.
FRAMES_HELD = (PREFETCH + 1) * BATCH * TILE * TILE * 3
#: Enough images (190 MiB of frames) that the stream cannot finish unread: its 16 frames
#: ahead and the socket's buffers hold a third of that.
STREAM_IMAGES = 1000


@pytest.fixture(scope="module")
def held_budget(start_augsvc, tmp_path_factory):
    root = tmp_path_factory.mktemp("held-data")
    (root / "many" / "a").mkdir(parents=True)
    for i in range(STREAM_IMAGES):
        (root / "many" / "a" / f"{i}.jpg").write_bytes(GOOD)
    srv = start_augsvc(
        AUGSVC_MAX_JOB_BYTES=str(HELD_BUDGET_BYTES),
        AUGSVC_MAX_INFLIGHT_BYTES=str(HELD_BUDGET_BYTES),
        AUGSVC_ENGINE_THREADS="4",
        AUGSVC_STREAM_PREFETCH=str(PREFETCH),
        AUGSVC_DATA_ROOTS=str(root),
    )
    with srv.client() as client:
        slow = {"ops": [{"op": "rotate", "degrees": 30}, {"op": "gaussian_blur",
                "kernel_size": 9, "p": 1.0}, {"op": "resize", "size": [30, 50]}]}  # fmt: skip
        assert client.put("/v1/recipes/slow", json=slow).status_code == 201
        assert client.put("/v1/recipes/tile", json=sized(TILE)).status_code == 201
        spec = {"kind": "folder", "path": str(root / "many")}
        assert client.put("/v1/datasets/many", json=spec).status_code == 201
    return srv


def held_bytes(server) -> int:
    with server.client() as client:
        return client.get("/readyz").json()["memory_held_bytes"]


def mib_in(detail: str, before: str) -> float:
    """The MiB figure that ends just before ``before`` in a problem's detail."""
    return float(detail.split(before)[0].rsplit(" ", 1)[-1])


def test_a_request_that_does_not_fit_beside_what_is_held_is_a_503(held_budget):
    """A stream whose client reads nothing stays open and keeps its hold: a request that
    the budget admits alone is refused while it is held (a budget that over-commits
    would serve it), with the arithmetic in its detail; once the stream is closed and
    its hold given back, the same request is served the same answer."""
    files = pngs(black_png(2500, 1500), 2)

    def send(client: httpx.Client) -> httpx.Response:
        return client.post("/v1/augment", params={"recipe": "slow", "seed": 1}, files=files)

    params = {"recipe": "tile", "seed": 0, "batch_size": BATCH}
    with held_budget.client() as client:
        alone = send(client)
        assert alone.status_code == 200, alone.text
        assert held_bytes(held_budget) == 0
        before = rejected_total(held_budget)
        with client.stream("GET", "/v1/datasets/many/stream", params=params) as stream:
            assert stream.status_code == 200
            assert held_bytes(held_budget) >= FRAMES_HELD
            with held_budget.client() as other:
                refused = send(other)
            assert refused.status_code == 503, refused.text
            problem = refused.json()
            assert problem["code"] == "overloaded"
            assert SLOW_PAIR_NEEDS in problem["detail"]
            needs = mib_in(problem["detail"], " MiB, and ")
            taken = mib_in(problem["detail"], " MiB of the ")
            budget = HELD_BUDGET_BYTES / 2**20
            assert needs <= budget < needs + taken, problem["detail"]
            assert taken * 2**20 >= FRAMES_HELD
        assert rejected_total(held_budget) - before == 1
        deadline = time.monotonic() + 60  # the server notices the closed connection
        while held_bytes(held_budget) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held_bytes(held_budget) == 0
        again = send(client)
        assert again.status_code == 200, again.text
        assert again.content == alone.content
