"""API keys: reads need `read`, writes need `admin`, health is open, and only a key
equal byte for byte to a configured one is accepted (the KeyRing itself, then a real
server)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from augsvc.api.auth import KeyRing, Scope, presented_key
from augsvc.errors import Forbidden, Unauthorized
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


def near_misses(key: str) -> list[str]:
    """Keys a lax comparison would take for ``key``: its prefixes, extensions, other
    cases, and the key padded with whitespace HTTP does not trim (and, for a KeyRing
    given the string as it is, with whitespace HTTP does trim)."""
    return [
        "", key[:1], key[:-1], key[1:], key[: len(key) // 2],  # prefixes and a suffix
        key + "0", key + key, key + ":admin", "x" + key,  # extensions
        key.upper(), key.swapcase(), key[:1].upper() + key[1:],  # other cases
        "\xa0" + key, key + "\xa0", key + "\x85", " " + key, key + " ", "\t" + key,
        key + "\n", key + "\x00", key[:3] + " " + key[3:],  # padded, split
    ]  # fmt: skip


# --- the KeyRing ---------------------------------------------------------------------


RING = KeyRing.parse(f"{ADMIN}:admin, {READER}:read")


def test_the_ring_takes_each_key_with_its_scope():
    assert RING.authenticate(ADMIN, Scope.ADMIN).scope is Scope.ADMIN
    assert RING.authenticate(ADMIN, Scope.READ).scope is Scope.ADMIN
    assert RING.authenticate(READER, Scope.READ).scope is Scope.READ
    with pytest.raises(Forbidden, match="read scope; this request needs admin"):
        RING.authenticate(READER, Scope.ADMIN)
    assert KeyRing.parse("").authenticate("anything", Scope.ADMIN) is None  # open service
    with pytest.raises(Unauthorized, match="an API key is required"):
        RING.authenticate(None, Scope.READ)


@pytest.mark.parametrize("key", [ADMIN, READER])
def test_the_ring_refuses_prefixes_extensions_other_cases_and_padding(key):
    for guess in near_misses(key):
        assert guess != key
        with pytest.raises(Unauthorized) as refused:
            RING.authenticate(guess, Scope.READ)
        expected = "unknown API key" if guess else "an API key is required"
        assert str(refused.value.detail).startswith(expected), repr(guess)


@given(guess=st.text(max_size=40))
def test_the_ring_accepts_nothing_but_the_keys_themselves(guess):
    assume(guess not in (ADMIN, READER))
    with pytest.raises(Unauthorized):
        RING.authenticate(guess, Scope.READ)


def test_a_string_that_is_not_unicode_is_refused_not_a_crash():
    with pytest.raises(Unauthorized):
        RING.authenticate(ADMIN + "\udc80", Scope.READ)


def test_only_http_whitespace_is_trimmed_from_a_presented_key():
    """Space and tab around a header value are HTTP's; a no-break space is the client's."""
    assert presented_key(f"Bearer  {ADMIN}\t", None) == ADMIN
    assert presented_key(None, f" {READER} ") == READER
    assert presented_key(f"Bearer \xa0{ADMIN}", None) == f"\xa0{ADMIN}"
    assert presented_key(None, f"{READER}\x85") == f"{READER}\x85"
    password = base64.b64encode(f"me: {ADMIN}".encode()).decode()
    assert presented_key(f"Basic {password}", None) == f" {ADMIN}"  # the password as typed


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


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"me:{key}".encode()).decode()}


def latin1(headers: dict[str, str]) -> dict[str, bytes]:
    """Header values as the bytes a client sends (a no-break space is one byte, 0xA0)."""
    return {name: value.encode("latin-1") for name, value in headers.items()}


@pytest.mark.parametrize("key", [ADMIN, READER])
def test_near_misses_of_a_key_are_401_over_http(client, key):
    """Each way of presenting a key, with each near miss that can travel in a header (a
    line break or NUL cannot; space and tab around a value are trimmed by HTTP itself)."""
    assert client.get("/v1/ops", headers=bearer(key)).status_code == 200
    for guess in near_misses(key):
        if not guess or guess != guess.strip(" \t") or "\n" in guess or "\x00" in guess:
            continue
        for headers in (bearer(guess), {"X-API-Key": guess}, basic(guess)):
            answer = client.get("/v1/ops", headers=latin1(headers))
            assert answer.status_code == 401, (guess, headers)
            assert answer.json()["code"] == "unauthorized"
    for padded in (f" {key}", f"{key} ", f"\t{key}"):  # kept inside a Basic password
        assert client.get("/v1/ops", headers=basic(padded)).status_code == 401, repr(padded)
