"""Hostile values against one real `augsvc serve`: never a 5xx, and the server lives on.

Every number a client controls is bounded where it is parsed (the field types of the
ops, the recipe's output and targets options, the boxes and keypoints of a request), so
a 400-digit integer, an infinity or a NaN is a 422 naming the field, never an
OverflowError in maths or a C library. The property tests walk what the server itself
publishes (every op's fields from ``GET /v1/ops``, the output and targets options from
its recipe schema, every route's parameters from ``/openapi.json``) and put generated
hostile values (huge and non-finite numbers, deep nesting, long strings, wrong types)
in each; the examples tests pin the cases that were 500s, each with the field named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.hostile import HUGE, dumps, hostile, op_document
from tests.imagegen import png_bytes

ADMIN = "hostile-admin-key-0123456789"
AUTH = {"X-API-Key": ADMIN}
IMAGE = png_bytes(16, 12, seed=3)
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(start_augsvc):
    """One server for the whole module, with keys (so the redirect case is unauthenticated)
    and small limits (so an accepted extreme value stays cheap)."""
    return start_augsvc(
        AUGSVC_API_KEYS=f"{ADMIN}:admin",
        AUGSVC_MAX_IMAGES="4",
        AUGSVC_MAX_OUTPUT_PIXELS="200000",
        AUGSVC_MAX_REQUEST_BYTES="2000000",
        AUGSVC_PREVIEW_MAX="4",
    )


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with server.client(headers=AUTH) as c:
        assert c.put("/v1/recipes/base", json={"ops": [{"op": "hflip"}]}).status_code == 201
        yield c
    # However the module went, the server is still up and answering, and no request
    # left a traceback in its log (a 4xx is the client's, never an unhandled error).
    assert server.running
    assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert "Traceback" not in server.stderr_tail(10**8)


@pytest.fixture(scope="module")
def published(client) -> dict[str, Any]:
    return {"ops": client.get("/v1/ops").json(), "openapi": client.get("/openapi.json").json()}


def assert_no_server_error(response: httpx.Response, what: str) -> None:
    event(f"status {response.status_code}")  # --hypothesis-show-statistics lists them
    assert response.status_code < 500, (what, response.status_code, response.text[:400])
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM, (what, response.text[:200])


# --- the recipe's fields, from what the server publishes ---------------------------------


def op_fields(published: dict[str, Any]) -> list[tuple[str, str]]:
    """(op, field) for every field of every op the server lists."""
    return [
        (entry["op"], name)
        for entry in published["ops"]["ops"]
        for name in entry["schema"].get("properties", {})
        if name != "op"
    ]


def option_fields(published: dict[str, Any], model: str) -> list[str]:
    return list(published["ops"]["recipe_schema"]["$defs"][model]["properties"])


def member_ops(published: dict[str, Any]) -> list[str]:
    """Ops a combinator may choose per sample (see parse_members)."""
    return [
        e["op"]
        for e in published["ops"]["ops"]
        if e["kind"] not in ("combinator", "policy", "normalize") and not e["changes_size"]
    ]


@st.composite
def hostile_recipes(draw: st.DrawFn, published: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(where, recipe) with one hostile value at one field of the recipe."""
    value = draw(hostile)
    place = draw(st.sampled_from(["op", "member", "output", "targets", "document"]))
    if place == "op":
        op, field = draw(st.sampled_from(op_fields(published)))
        return f"ops[0].{field} of {op}", {"ops": [op_document(op, field, value)]}
    if place == "member":
        op, field = draw(
            st.sampled_from([f for f in op_fields(published) if f[0] in member_ops(published)])
        )
        combinator = {"op": "one_of", "ops": [op_document(op, field, value), {"op": "hflip"}]}
        return f"ops[0].ops[0].{field} of {op}", {"ops": [combinator]}
    if place in ("output", "targets"):
        model = "OutputOptions" if place == "output" else "TargetOptions"
        field = draw(st.sampled_from(option_fields(published, model)))
        return f"{place}.{field}", {"ops": [{"op": "hflip"}], place: {field: value}}
    key = draw(st.sampled_from(["ops", "output", "targets", "op"]))
    if key == "op":
        return "ops[0]", {"ops": [value]}
    return key, {"ops": [{"op": "hflip"}], key: value}


def send_recipe(client: httpx.Client, route: str, recipe: bytes) -> httpx.Response:
    """The recipe to one of the three routes that read a recipe document."""
    if route in ("put", "put-yaml"):  # JSON is YAML's flow style: the YAML reader too
        headers = {"Content-Type": "application/json" if route == "put" else "application/yaml"}
        return client.put("/v1/recipes/hostile", content=recipe, headers=headers)
    files = [("recipe", ("recipe.json", recipe, "application/json")),
             ("image", ("a.png", IMAGE, "image/png"))]  # fmt: skip
    if route == "augment":
        return client.post("/v1/augment", params={"seed": 1}, files=files)
    return client.post("/v1/preview", params={"seed": 1, "n": 1}, files=files)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_recipe_fields_get_no_5xx(client, published, data):
    where, recipe = data.draw(hostile_recipes(published))
    route = data.draw(st.sampled_from(["put", "put-yaml", "augment", "preview"]))
    assert_no_server_error(send_recipe(client, route, dumps(recipe)), f"{route} {where}")


# --- targets -----------------------------------------------------------------------------


@st.composite
def hostile_targets(draw: st.DrawFn) -> tuple[str, Any]:
    value = draw(hostile)
    good = {"boxes": [[1, 1, 5, 5]], "labels": [1], "keypoints": [[2, 2, 1]], "box_format": "xyxy"}
    where = draw(st.sampled_from(["box", "point", "boxes", "labels", "keypoints", "box_format",
                                  "entry", "part"]))  # fmt: skip
    if where == "box":
        box = [1, 1, 5, 5]
        box[draw(st.integers(0, 3))] = value
        return where, [{**good, "boxes": [box]}]
    if where == "point":
        point = [2, 2, 1]
        point[draw(st.integers(0, 2))] = value
        return where, [{**good, "keypoints": [point]}]
    if where == "entry":
        return where, [value]
    if where == "part":
        return where, value
    return where, [{**good, where: value}]


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=hostile_targets())
def test_hostile_targets_get_no_5xx(client, case):
    where, targets = case
    files = [("image", ("a.png", IMAGE, "image/png")),
             ("targets", ("targets.json", dumps(targets), "application/json"))]  # fmt: skip
    response = client.post(
        "/v1/augment", params={"seed": 1, "recipe": "base"}, files=files,
        headers={"Accept": "application/zip"},
    )  # fmt: skip
    assert_no_server_error(response, where)


# --- every route's parameters ------------------------------------------------------------


def parameters(published: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(method, path template, parameter, where) for every parameter of every operation."""
    found = []
    for path, operations in published["openapi"]["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("query", "path", "header"):
                    found.append((method, path, parameter["name"], parameter["in"]))
    return found


def as_text(value: Any) -> str:
    text = dumps(value).decode()
    return text[1:-1] if text.startswith('"') else text


#: Valid values for the parameters a route needs beside the one being tried, so the
#: hostile value is read where it would be in a real request.
DEFAULTS = {"seed": "1", "recipe": "base", "n": "1"}


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_parameters_of_every_route_get_no_5xx(client, published, data):
    method, template, name, where = data.draw(st.sampled_from(parameters(published)))
    value = as_text(data.draw(hostile))[:4000]  # a URL of megabytes is the proxy's to refuse
    params = {k: v for k, v in DEFAULTS.items() if "{" + k + "}" not in template}
    headers = {}
    if where == "path":
        params.pop(name, None)
        template = template.replace("{" + name + "}", quote(value, safe="") or "%20")
    elif where == "header":  # what HTTP can carry: visible ASCII and spaces
        headers[name] = "".join(c for c in value if " " <= c <= "~")
    else:
        params[name] = value
    path = re.sub(r"\{[^}]+\}", "base", template)
    response = client.request(method.upper(), path, params=params, headers=headers)
    assert_no_server_error(response, f"{method} {template} {name}={value[:60]!r}")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_dataset_registrations_get_no_5xx(client, published, data):
    schema = published["openapi"]["components"]["schemas"]["DatasetSpec"]
    field = data.draw(st.sampled_from([*schema.get("properties", {}), "document"]))
    value = data.draw(hostile)
    spec = value if field == "document" else {"kind": "folder", "path": "/nowhere", field: value}
    response = client.put(
        "/v1/datasets/hostile", content=dumps(spec), headers={"Content-Type": "application/json"}
    )
    assert_no_server_error(response, f"dataset {field}")


# --- the cases that were 500s, each named ------------------------------------------------

RECIPE_FIELDS = [
    ({"op": "rotate", "degrees": HUGE}, "ops[0].degrees"),
    ({"op": "translate", "x": HUGE}, "ops[0].x"),
    ({"op": "affine", "scale": [1, HUGE]}, "ops[0].scale"),
    ({"op": "affine", "shear": [0, HUGE, 0, 0]}, "ops[0].shear"),
    ({"op": "one_of", "ops": [{"op": "hflip"}], "weights": [HUGE]}, "ops[0].weights"),
    ({"op": "solarize", "threshold": HUGE}, "ops[0].threshold"),
    ({"op": "solarize_add", "add": 1, "threshold": HUGE}, "ops[0].threshold"),
    ({"op": "shear", "center": [HUGE, 0]}, "ops[0].center"),
    ({"op": "gaussian_blur", "kernel_size": 3, "sigma": HUGE}, "ops[0].sigma"),
    ({"op": "normalize", "std": [HUGE, 1, 1]}, "ops[0].std"),
    ({"op": "perspective", "distortion_scale": HUGE}, "ops[0].distortion_scale"),
    ({"op": "augmix", "alpha": HUGE}, "ops[0].alpha"),
    ({"op": "rand_augment", "magnitude": HUGE}, "ops[0].magnitude"),
    ({"op": "some_of", "ops": [{"op": "hflip"}], "n": HUGE}, "ops[0].n"),
    ({"op": "hflip", "p": HUGE}, "ops[0].p"),
    ({"op": "brightness", "factor": "@@1e400@@"}, "ops[0].factor"),
    ({"op": "rotate", "degrees": [0, "@@huge-fraction@@"]}, "ops[0].degrees"),
]


def field_paths(response: httpx.Response) -> list[str]:
    """The field paths a 422 names, as the detail writes them."""
    body = response.json()
    paths = []
    for error in body.get("errors", []):
        out = ""
        for part in error["loc"]:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        paths.append(out)
    return paths


@pytest.mark.parametrize("route", ["put", "put-yaml", "augment", "preview"])
@pytest.mark.parametrize(("op", "path"), RECIPE_FIELDS, ids=[p for _, p in RECIPE_FIELDS])
def test_a_huge_number_in_a_recipe_field_is_a_422_naming_it(client, route, op, path):
    response = send_recipe(client, route, dumps({"ops": [op]}))
    assert response.status_code == 422, response.text[:400]
    assert response.json()["code"] == "invalid-recipe"
    assert any(p.startswith(path) for p in field_paths(response)), response.text[:400]
    assert path in response.json()["detail"]


@pytest.mark.parametrize(
    ("options", "path"),
    [
        ({"targets": {"min_area": HUGE}}, "targets.min_area"),
        ({"targets": {"min_visibility": HUGE}}, "targets.min_visibility"),
        ({"targets": {"flip_pairs": [[0, HUGE]]}}, "targets.flip_pairs"),
        ({"targets": {"ignore_index": HUGE}}, "targets.ignore_index"),
        ({"output": {"size": [HUGE, 8]}}, "output.size"),
        ({"output": {"fill": [HUGE]}}, "output.fill"),
    ],
)
def test_a_huge_number_in_an_option_is_a_422_naming_it(client, options, path):
    response = send_recipe(client, "put", dumps({"ops": [{"op": "hflip"}], **options}))
    assert response.status_code == 422, response.text[:400]
    assert any(p.startswith(path) for p in field_paths(response)), response.text[:400]


@pytest.mark.parametrize(
    ("targets", "path"),
    [
        ([{"boxes": [[0, 0, HUGE, 4]]}], "body.targets[0].boxes[0]"),
        ([{"boxes": [[0, 0, "@@1e400@@", 4]]}], "body.targets[0].boxes[0]"),
        ([{"boxes": [[0, 0, float("nan"), 4]]}], "body.targets[0].boxes[0]"),
        ([{"keypoints": [[HUGE, 1]]}], "body.targets[0].keypoints[0]"),
        ([{"keypoints": [[[1, 1], [2, -HUGE]]]}], "body.targets[0].keypoints[0][1]"),
        ([{"boxes": [[0, 0, 2, 2]], "labels": [HUGE]}], "body.targets[0].labels"),
    ],
)
def test_a_huge_coordinate_is_a_422_naming_it(client, targets, path):
    files = [("image", ("a.png", IMAGE, "image/png")),
             ("targets", ("targets.json", dumps(targets), "application/json"))]  # fmt: skip
    response = client.post("/v1/augment", params={"seed": 1, "recipe": "base"}, files=files)
    assert response.status_code == 422, response.text[:400]
    assert path in field_paths(response), response.text[:400]
    assert path in response.json()["detail"]


# --- If-Match and trailing slashes -------------------------------------------------------


def test_a_stale_if_match_is_refused_even_when_the_body_equals_the_latest(client):
    first = client.put("/v1/recipes/etag", json={"ops": [{"op": "hflip"}]}).json()
    latest_doc = {"ops": [{"op": "vflip"}]}
    second = client.put("/v1/recipes/etag", json=latest_doc,
                        headers={"If-Match": f'"{first["digest"]}"'})  # fmt: skip
    assert second.status_code == 201
    stale = client.put("/v1/recipes/etag", json=latest_doc,
                       headers={"If-Match": f'"{first["digest"]}"'})  # fmt: skip
    assert stale.status_code == 412, stale.text
    assert stale.json()["code"] == "precondition-failed"
    assert second.json()["digest"] in stale.json()["detail"]
    for match in (f'"{second.json()["digest"]}"', "*"):  # a current If-Match: unchanged, 200
        same = client.put("/v1/recipes/etag", json=latest_doc, headers={"If-Match": match})
        assert same.status_code == 200 and same.json()["version"] == 2
    assert len(client.get("/v1/recipes/etag/versions").json()["versions"]) == 2


@pytest.mark.parametrize("path", ["/v1/recipes/", "/v1/ops/", "/healthz/", "/ui/", "/v1/augment/"])
def test_a_trailing_slash_is_not_redirected_to_the_host_header(server, path):
    """Unauthenticated, with another host named: no redirect (Starlette's would point at
    the Host header), a problem instead."""
    for method in ("GET", "POST"):
        response = httpx.request(
            method, server.url + path, headers={"Host": "evil.example"}, follow_redirects=False
        )
        assert not response.is_redirect, (method, path, response.headers.get("location"))
        assert "location" not in response.headers
        assert response.status_code in (401, 404, 405), (method, path, response.status_code)
        assert response.headers["content-type"] == PROBLEM


# --- safetensors bodies ------------------------------------------------------------------


def post_safetensors(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(
        "/v1/augment",
        params={"recipe": "base", "seed": 1},
        content=body,
        headers={"Content-Type": "application/x-safetensors"},
    )


def test_a_safetensors_body_has_the_box_limit_of_a_multipart_one(client):
    from augsvc.codec import images_to_safetensors
    from augsvc.codec.targets import MAX_BOXES

    images = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    boxes = torch.tensor([[0.0, 1, 1, 4, 4]]).repeat(MAX_BOXES + 1, 1)
    response = post_safetensors(client, images_to_safetensors({"images": images, "boxes": boxes}))
    assert response.status_code == 422, response.text[:300]
    assert response.json()["errors"][0]["loc"] == ["boxes"]
    assert f"at most {MAX_BOXES} boxes per image" in response.json()["detail"]
    multipart = client.post(
        "/v1/augment",
        params={"recipe": "base", "seed": 1},
        files=[("image", ("a.png", IMAGE, "image/png")),
               ("targets", ("t.json", json.dumps([{"boxes": [[1, 1, 4, 4]] * (MAX_BOXES + 1)}]),
                            "application/json"))],
    )  # fmt: skip
    assert multipart.status_code == 422 and f"at most {MAX_BOXES}" in multipart.json()["detail"]
    fits = boxes[:MAX_BOXES]
    ok = post_safetensors(client, images_to_safetensors({"images": images, "boxes": fits}))
    assert ok.status_code == 200, ok.text[:300]


@pytest.mark.parametrize(
    ("extra", "payload", "words"),
    [
        ({"keys": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}, b"", "overlap"),
        ({}, b"\0" * 16, "16 trailing bytes"),
    ],
)
def test_a_safetensors_body_that_does_not_tile_is_a_422(client, extra, payload, words):
    from tests.imagegen import raw_safetensors

    size = 3 * 8 * 8
    header = {"images": {"dtype": "U8", "shape": [1, 3, 8, 8], "data_offsets": [0, size]}, **extra}
    response = post_safetensors(client, raw_safetensors(header, bytes(size) + payload))
    assert response.status_code == 422, response.text[:300]
    assert words in response.json()["detail"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rows=st.lists(
        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=5, max_size=5),
        min_size=1,
        max_size=4,
    ),
    labels=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
)
def test_hostile_safetensors_boxes_get_no_5xx(client, rows, labels):
    from augsvc.codec import images_to_safetensors

    tensors = {"images": torch.zeros(2, 3, 8, 8, dtype=torch.uint8),
               "boxes": torch.tensor(rows, dtype=torch.float64)}  # fmt: skip
    if labels is not None:
        tensors["labels"] = torch.full((len(rows),), labels, dtype=torch.int64)
    assert_no_server_error(post_safetensors(client, images_to_safetensors(tensors)), str(rows))
