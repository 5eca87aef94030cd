"""Replicas sharing one real redis-server, and a real Redis outage: the replicas agree
byte for byte, and augment keeps working on recipes a replica has already resolved."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from tests.imagegen import jpeg_bytes

RECIPE = {
    "ops": [
        {"op": "random_resized_crop", "size": [24, 24], "scale": [0.4, 1.0]},
        {"op": "color_jitter", "brightness": 0.4, "saturation": 0.3},
    ]
}
FILES = [("image", (f"{i}.jpg", jpeg_bytes(64, 48, seed=i), "image/jpeg")) for i in range(2)]


@pytest.fixture(scope="module")
def redis(start_redis):
    return start_redis()


@pytest.fixture(scope="module")
def replicas(start_augsvc, redis) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    env = {"AUGSVC_REDIS_URL": redis.url, "AUGSVC_REDIS_PREFIX": f"t-{uuid.uuid4().hex[:8]}"}
    a, b = start_augsvc(**env), start_augsvc(**env)
    with a.client() as ca, b.client() as cb:
        yield ca, cb


def augment(client: httpx.Client, recipe: str, accept: str = "application/zip") -> httpx.Response:
    return client.post(
        "/v1/augment",
        params={"recipe": recipe, "seed": 42, "offset": 3},
        files=FILES,
        headers={"Accept": accept},
    )


def test_recipe_written_through_one_replica_is_served_by_the_other(replicas):
    a, b = replicas
    put = a.put("/v1/recipes/shared", json=RECIPE)
    assert put.status_code == 201
    got = b.get("/v1/recipes/shared")
    assert got.status_code == 200
    assert got.json() == put.json()
    assert got.headers["ETag"] == put.headers["ETag"]
    assert b.put("/v1/recipes/shared", json=RECIPE).status_code == 200  # same content, same v1


def test_replicas_return_byte_identical_results(replicas):
    a, b = replicas
    assert a.put("/v1/recipes/same", json=RECIPE).status_code in (200, 201)
    from_a, from_b = augment(a, "same"), augment(b, "same")
    assert from_a.status_code == from_b.status_code == 200
    assert from_a.content == from_b.content
    assert from_a.headers["X-Augsvc-Recipe-Digest"] == from_b.headers["X-Augsvc-Recipe-Digest"]

    batch = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (4, 3, 40, 50), np.uint8))
    body = save_safetensors({"images": batch})
    answers = [
        c.post(
            "/v1/augment",
            params={"recipe": "same@1", "seed": 9},
            content=body,
            headers={"Content-Type": "application/x-safetensors"},
        )
        for c in (a, b)
    ]
    assert answers[0].status_code == 200
    assert answers[0].content == answers[1].content
    assert load_safetensors(answers[0].content)["images"].shape == (4, 3, 24, 24)


def test_redis_outage_and_recovery(replicas, redis):
    a, b = replicas
    assert a.put("/v1/recipes/outage", json=RECIPE).status_code == 201
    digest = a.get("/v1/recipes/outage").json()["digest"]
    before = {ref: augment(a, ref) for ref in ("outage", "outage@1", digest)}
    assert all(r.status_code == 200 for r in before.values())

    redis.stop()
    try:
        # Replica A resolved these before: served from its cache, same bytes.
        for ref, earlier in before.items():
            during = augment(a, ref)
            assert during.status_code == 200, (ref, during.text)
            assert during.content == earlier.content
        # Replica B never saw the recipe: it cannot know it without the store.
        unknown = augment(b, "outage")
        assert unknown.status_code == 503
        assert unknown.json()["code"] == "store-unavailable"
        write = a.put("/v1/recipes/outage", json={"ops": [{"op": "hflip"}]})
        assert write.status_code == 503
        assert write.headers["content-type"] == "application/problem+json"
        assert write.json()["code"] == "store-unavailable"
        assert "redis://" not in write.text  # never leak the URL
        ready = a.get("/readyz")
        assert ready.status_code == 503 and ready.json()["code"] == "store-unavailable"
        assert a.get("/healthz").status_code == 200
    finally:
        redis.start()

    # Same processes, no restart: writes work again (the data died with the old Redis).
    deadline = time.monotonic() + 10
    while (put := a.put("/v1/recipes/outage", json=RECIPE)).status_code == 503:
        assert time.monotonic() < deadline, put.text
        time.sleep(0.2)
    assert put.status_code == 201, put.text
    assert a.get("/readyz").status_code == 200
    assert b.get("/readyz").status_code == 200
    assert augment(b, "outage").content == before["outage"].content
