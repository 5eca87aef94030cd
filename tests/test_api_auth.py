"""API keys against a real server: reads need `read`, writes need `admin`, health is open."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.imagegen import jpeg_bytes

ADMIN, READER = "adm-7f3c9e2b41", "rd-1a2b3c4d5e"
RECIPE = {"ops": [{"op": "hflip"}], "output": {"size": [16, 16]}}
FILES = [("image", ("a.jpg", jpeg_bytes(32, 24), "image/jpeg"))]


@pytest.fixture(scope="module")
def server(start_augsvc):
    return start_augsvc(AUGSVC_API_KEYS=f"{ADMIN}:admin,{READER}:read")


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_health_ready_and_metrics_are_open(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_without_a_key_writes_reads_and_augment_are_refused(client):
    for response in (
        client.put("/v1/recipes/auth-a", json=RECIPE),
        client.delete("/v1/recipes/auth-a"),
        client.get("/v1/recipes"),
        client.get("/v1/ops"),
        client.post("/v1/augment", params={"recipe": "auth-a"}, files=FILES),
    ):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_key_is_401_and_never_echoed(client):
    response = client.put("/v1/recipes/auth-a", json=RECIPE, headers=bearer("guess-123456"))
    assert response.status_code == 401
    assert "guess-123456" not in response.text


def test_read_key_cannot_write_but_can_read_and_augment(client):
    assert client.put("/v1/recipes/auth-b", json=RECIPE, headers=bearer(ADMIN)).status_code == 201
    refused = client.put("/v1/recipes/auth-b", json=RECIPE, headers=bearer(READER))
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    assert READER not in refused.text
    assert client.delete("/v1/recipes/auth-b", headers=bearer(READER)).status_code == 403
    assert client.get("/v1/recipes/auth-b", headers=bearer(READER)).status_code == 200
    augmented = client.post(
        "/v1/augment",
        params={"recipe": "auth-b", "seed": 1},
        files=FILES,
        headers={"X-API-Key": READER},  # the other accepted header
    )
    assert augmented.status_code == 200, augmented.text
    preview = client.get("/v1/recipes/auth-b/preview?n=1", headers=bearer(READER))
    assert preview.status_code == 200


def test_admin_key_can_write_and_delete(client):
    headers = {"X-API-Key": ADMIN}
    assert client.put("/v1/recipes/auth-c", json=RECIPE, headers=headers).status_code == 201
    assert client.delete("/v1/recipes/auth-c", headers=headers).status_code == 204


def test_keys_never_reach_the_server_log(server, client):
    client.get("/v1/ops", headers=bearer(ADMIN))
    client.get("/v1/ops", headers={"X-API-Key": READER})
    log = server.stderr_path.read_text()
    assert ADMIN not in log and READER not in log
