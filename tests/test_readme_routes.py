"""The README's HTTP table lists every route the server serves, and nothing else.

Rows of the table under ``## HTTP API`` start with ``| `METHOD /path` |``; the routes are
read from a real server's ``/openapi.json``. A route added without a README row, or a row
left behind by a removed route, fails here naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| `(?P<method>GET|PUT|POST|DELETE|PATCH|HEAD) (?P<path>/[^` ?]*)[^`]*` \|")
METHODS = {"get", "put", "post", "delete", "patch", "head"}


def readme_routes() -> set[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## HTTP API\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("\n### ", 1)[0]
    return {(m["method"], m["path"]) for m in map(ROW.match, table.splitlines()) if m}


def test_the_readme_table_is_read():
    routes = readme_routes()
    assert ("GET", "/v1/datasets/{name}/stream") in routes
    assert ("POST", "/v1/augment") in routes


@pytest.fixture(scope="module")
def served_routes(start_augsvc) -> set[tuple[str, str]]:
    server = start_augsvc()
    with server.client() as client:
        document = client.get("/openapi.json").json()
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in METHODS
    }


def test_every_served_route_is_in_the_readme_and_no_other(served_routes):
    listed = readme_routes()
    assert sorted(served_routes - listed) == [], "served but missing from the README's table"
    assert sorted(listed - served_routes) == [], "in the README's table but not served"
