"""The playground, /docs and /redoc over HTTP against a real `augsvc serve`: the same
read check as /v1 (with a Basic challenge a browser acts on), a strict CSP, nothing
that points off the machine, and POST /v1/preview giving a draft the grid its stored
version would get."""

from __future__ import annotations

import base64
import fnmatch
import math
import re
import tomllib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from augsvc.api.auth import presented_key
from augsvc.api.routes.playground import ASSETS
from tests.imagegen import jpeg_bytes

ROOT = Path(__file__).parent.parent
STATIC = ROOT / "augsvc" / "api" / "static"
ADMIN, READER = "pg-adm-5d1e", "pg-rd-9c0a"
RECIPE = {"ops": [{"op": "rotate", "degrees": 20}, {"op": "color_jitter", "brightness": 0.3}]}
#: An URL off the machine (an SVG's namespace name is a name, never fetched).
OUTSIDE = re.compile(rb"https?://(?!127\.0\.0\.1|www\.w3\.org/2000/svg\")")


def basic(key: str, user: str = "anyone") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()}


@pytest.fixture(scope="module")
def open_client(start_augsvc) -> Iterator[httpx.Client]:
    with start_augsvc().client() as client:
        client.put("/v1/recipes/pg-draft", json=RECIPE).raise_for_status()
        yield client


@pytest.fixture(scope="module")
def keyed_client(start_augsvc) -> Iterator[httpx.Client]:
    with start_augsvc(AUGSVC_API_KEYS=f"{ADMIN}:admin,{READER}:read").client() as client:
        yield client


# --- auth ----------------------------------------------------------------------------


def test_the_page_needs_a_read_key_and_asks_a_browser_for_one(keyed_client):
    for path in ("/ui", "/ui/assets/playground.js", "/ui/sample.jpg"):
        refused = keyed_client.get(path)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith('Basic realm="augsvc"')
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert keyed_client.get(path, headers=basic("wrong")).status_code == 401
        for guess in (READER[:-1], READER[:4], READER + "a", READER.upper()):  # near misses
            for headers in (basic(guess), {"X-API-Key": guess}):
                assert keyed_client.get(path, headers=headers).status_code == 401, guess
        assert keyed_client.get(path, headers=basic(f" {READER}")).status_code == 401
        for headers in (basic(READER), basic(ADMIN), {"X-API-Key": READER}):
            assert keyed_client.get(path, headers=headers).status_code == 200
    # /v1 keeps its Bearer challenge, and takes the browser's Basic login too
    assert keyed_client.get("/v1/ops").headers["WWW-Authenticate"].startswith("Bearer")
    assert keyed_client.get("/v1/ops", headers=basic(READER)).status_code == 200
    assert keyed_client.put("/v1/recipes/x", json=RECIPE, headers=basic(READER)).status_code == 403


def test_whoami_names_the_scope_of_the_key(keyed_client, open_client):
    assert keyed_client.get("/v1/whoami").status_code == 401
    assert keyed_client.get("/v1/whoami", headers={"X-API-Key": READER}).json() == {
        "keys_required": True,
        "scope": "read",
    }
    assert keyed_client.get("/v1/whoami", headers=basic(ADMIN)).json()["scope"] == "admin"
    assert open_client.get("/v1/whoami").json() == {"keys_required": False, "scope": "admin"}


@given(
    key=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1)
    .map(str.strip)
    .filter(bool),
    user=st.text(st.characters(codec="utf-8", exclude_characters=":"), max_size=20),
    other=st.one_of(st.none(), st.text(min_size=1, max_size=10)),
)
def test_a_basic_login_presents_its_password_and_explicit_keys_win(key, user, other):
    header = basic(key, user)["Authorization"]
    assert presented_key(header, None) == key
    if other is not None and other.strip(" \t"):  # HTTP trims only its own whitespace
        assert presented_key(header, other) == other.strip(" \t")  # the page's X-API-Key
        assert presented_key(f"Bearer {other}", None) == other.strip(" \t")


@pytest.mark.parametrize("header", ["Basic", "Basic !!!", "Basic " + "bm9jb2xvbg==", "Basic Og=="])
def test_a_malformed_basic_login_presents_no_key(header):
    assert presented_key(header, None) is None  # not base64 / no colon / empty password


# --- the page -----------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if self.tags and self.tags[-1][0] == "script":
            self.script_text += data.strip()


def test_the_page_has_a_strict_csp_and_no_inline_script_or_style(open_client):
    page = open_client.get("/ui")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = dict(
        part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";")
    )
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self' blob:"
    assert csp["frame-ancestors"] == "'none'"
    parsed = _Tags()
    parsed.feed(page.text)
    scripts = [attrs for tag, attrs in parsed.tags if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts)
    assert parsed.script_text == ""
    assert not any(
        "style" in attrs or any(a.startswith("on") for a in attrs) for _, attrs in parsed.tags
    )
    assert "<style" not in page.text


def test_every_asset_is_served_and_none_points_off_the_machine(open_client):
    for name in sorted(ASSETS):
        answer = open_client.get(f"/ui/assets/{name}")
        assert answer.status_code == 200, name
        assert "Content-Security-Policy" in answer.headers
        assert not OUTSIDE.search(answer.content), name
    assert not OUTSIDE.search(open_client.get("/ui").content)
    assert open_client.get("/ui/assets/../app.py").status_code == 404
    assert open_client.get("/ui/assets/index.html").status_code == 404
    photo = open_client.get("/ui/sample.jpg")
    assert photo.headers["Content-Type"] == "image/jpeg" and photo.content[:2] == b"\xff\xd8"


def test_the_static_files_are_package_data_of_the_wheel():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["augsvc"]
    files = [p.relative_to(ROOT / "augsvc").as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert files
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


# --- previews of drafts -------------------------------------------------------------


@pytest.mark.parametrize(("seed", "n"), [(0, 9), (5, 7), (123456789, 1)])
def test_a_drafts_preview_is_the_stored_recipes_preview(open_client, seed, n):
    import json

    stored = open_client.get("/v1/recipes/pg-draft/preview", params={"seed": seed, "n": n})
    draft = open_client.post(
        "/v1/preview", params={"seed": seed, "n": n}, files={"recipe": json.dumps(RECIPE)}
    )
    assert draft.status_code == 200, draft.text
    assert draft.content == stored.content
    for answer in (stored, draft):
        assert answer.headers["X-Augsvc-Grid-Columns"] == str(math.ceil(math.sqrt(n)))
        assert answer.headers["X-Augsvc-Grid-Gap"] == "4"
    assert draft.headers["X-Augsvc-Recipe-Digest"] == stored.headers["X-Augsvc-Recipe-Digest"]

    photo = ("mine.jpg", jpeg_bytes(64, 48), "image/jpeg")
    mine = open_client.post(
        "/v1/preview", params={"seed": seed, "n": n},
        files={"recipe": (None, json.dumps(RECIPE)), "image": photo},
    )  # fmt: skip
    stored_mine = open_client.post(
        "/v1/recipes/pg-draft/preview", params={"seed": seed, "n": n}, files={"image": photo}
    )
    assert mine.status_code == 200, mine.text
    assert mine.content == stored_mine.content != draft.content


def test_a_draft_preview_names_what_is_wrong(open_client):
    photo = ("a.jpg", jpeg_bytes(16, 16), "image/jpeg")
    missing = open_client.post("/v1/preview", files={"image": photo})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "recipe"]
    bad = open_client.post("/v1/preview", files={"recipe": '{"ops": [{"op": "rotate"}]}'})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["ops", 0, "degrees"]
    not_json = open_client.post("/v1/preview", files={"recipe": "{"})
    assert not_json.status_code == 422
    assert open_client.post("/v1/preview", json=RECIPE).status_code == 415
    two = [("image", photo), ("image", photo), ("recipe", (None, '{"ops": []}'))]
    assert open_client.post("/v1/preview", files=two).status_code == 413


# --- /docs and /redoc ---------------------------------------------------------------


def test_docs_and_redoc_load_only_local_files(open_client):
    for path in ("/docs", "/redoc"):
        page = open_client.get(path)
        assert page.status_code == 200
        assert "script-src 'self';" in page.headers["Content-Security-Policy"]
        assert not OUTSIDE.search(page.content)
        parsed = _Tags()
        parsed.feed(page.text)
        assert parsed.script_text == ""
        for _, attrs in parsed.tags:
            for url in (attrs.get("src"), attrs.get("href"), attrs.get("spec-url")):
                if url:
                    assert open_client.get(f"/{url}").status_code == 200, url
    redoc = open_client.get("/docs/assets/redoc.standalone.js").content
    assert b"cdn.redoc.ly" not in redoc
    assert open_client.get("/docs/assets/nothing.js").status_code == 404
    assert "/ui" not in open_client.get("/openapi.json").json()["paths"]
