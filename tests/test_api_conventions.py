"""What a first ``curl`` meets: names, unlabelled bodies, one timestamp convention.

Against a real server with curl as a user types it: an uppercase name gets a 422 that
states the rule and the lowercase spelling; ``--data-binary @file`` without a
Content-Type is sniffed as JSON or YAML; a type that is neither gets a 415 naming the
header to send; recipes and datasets share ISO timestamps, and the dataset list carries
each dataset's size and classes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augsvc.errors import InvalidRecipe
from augsvc.recipes import digest, parse_recipe
from tests.imagegen import jpeg_bytes
from tests.mixes import recipes


def curl(*args: str) -> tuple[int, dict]:
    """(status, JSON body) of ``curl -sS ARGS`` (no Content-Type unless ARGS set one)."""
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, check=True, timeout=60
    )
    body, _, status = done.stdout.decode().rpartition("\n")
    return int(status), json.loads(body) if body.strip() else {}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("conventions-data")
    for name in ("cats", "dogs"):
        (root / "pets" / name).mkdir(parents=True)
        for i in range(2):
            (root / "pets" / name / f"{i}.jpg").write_bytes(jpeg_bytes(32, 24, seed=i))
    (root / "gone" / "only").mkdir(parents=True)
    (root / "gone" / "only" / "0.jpg").write_bytes(jpeg_bytes(32, 24))
    return root


@pytest.fixture(scope="module")
def server(start_augsvc, data_root):
    return start_augsvc(AUGSVC_DATA_ROOTS=str(data_root))


def test_an_uppercase_name_is_refused_with_the_rule_and_the_lowercase_spelling(server, tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text('{"ops": [{"op": "hflip"}]}')
    status, problem = curl(
        "-X", "PUT", f"{server.url}/v1/recipes/Train", "-H", "Content-Type: application/json",
        "--data-binary", f"@{recipe}",
    )  # fmt: skip
    assert status == 422 and problem["code"] == "invalid-reference"
    assert "lowercase" in problem["detail"] and "^[a-z0-9][a-z0-9._-]{0,63}$" in problem["detail"]
    assert "did you mean 'train'?" in problem["detail"]
    status, problem = curl(f"{server.url}/v1/recipes/Train@2")
    assert status == 422 and "did you mean 'train@2'?" in problem["detail"]
    status, problem = curl(f"{server.url}/v1/datasets/ImageNet")
    assert status == 422 and "invalid dataset name" in problem["detail"]
    assert "did you mean 'imagenet'?" in problem["detail"]


def test_a_recipe_sent_without_a_content_type_is_sniffed(server, tmp_path):
    as_json = tmp_path / "recipe.json"
    as_json.write_text('\n  {"ops": [{"op": "rotate", "degrees": 30}]}\n')
    as_yaml = tmp_path / "recipe.yaml"
    as_yaml.write_text("ops:\n  - op: rotate\n    degrees: 30\n")
    # curl's --data-binary labels the body application/x-www-form-urlencoded
    status, first = curl("-X", "PUT", f"{server.url}/v1/recipes/sniffed", "--data-binary",
                         f"@{as_json}")  # fmt: skip
    assert status == 201, first
    status, second = curl("-X", "PUT", f"{server.url}/v1/recipes/sniffed", "--data-binary",
                          f"@{as_yaml}")  # fmt: skip
    assert status == 200 and second["digest"] == first["digest"]  # the same recipe
    # no Content-Type header at all
    status, third = curl("-X", "PUT", f"{server.url}/v1/recipes/sniffed", "-H", "Content-Type:",
                         "--data-binary", f"@{as_yaml}")  # fmt: skip
    assert status == 200 and third["version"] == 1


WRITINGS = {
    "json": lambda r: json.dumps(r).encode(),
    "indented json": lambda r: b"\n  " + json.dumps(r, indent=2).encode(),
    "yaml": lambda r: yaml.safe_dump(r, sort_keys=False).encode(),
    "flow yaml": lambda r: yaml.safe_dump(r, default_flow_style=True).encode(),
}
UNLABELLED = (None, "application/x-www-form-urlencoded", "text/plain", "application/octet-stream")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(document=recipes(), writing=st.sampled_from(sorted(WRITINGS)),
       content_type=st.sampled_from(UNLABELLED))  # fmt: skip
def test_any_recipe_written_any_way_without_a_type_stores_the_same_digest(
    server, document, writing, content_type
):
    try:
        expected = digest(parse_recipe(document))
    except InvalidRecipe:
        return
    headers = {"Content-Type": content_type} if content_type else {}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        # a fresh copy: PyYAML writes shared lists as anchors, which the server refuses
        body = WRITINGS[writing](json.loads(json.dumps(document)))
        response = client.put("/v1/recipes/any-writing", content=body, headers=headers)
        assert "content-type" in response.request.headers or content_type is None
    assert response.status_code in (200, 201), response.text
    assert response.json()["digest"] == expected


def test_a_body_of_another_type_gets_a_415_naming_the_header(server, tmp_path):
    as_json = tmp_path / "recipe.json"
    as_json.write_text('{"ops": [{"op": "hflip"}]}')
    status, problem = curl(
        "-X", "PUT", f"{server.url}/v1/recipes/typed", "-H", "Content-Type: image/png",
        "--data-binary", f"@{as_json}",
    )  # fmt: skip
    assert status == 415 and problem["code"] == "unsupported-media-type"
    assert "'Content-Type: application/json or application/yaml'" in problem["detail"]
    status, problem = curl(
        "-X", "PUT", f"{server.url}/v1/datasets/typed", "-H", "Content-Type: application/yaml",
        "--data-binary", '{"kind": "folder", "path": "/nowhere"}',
    )  # fmt: skip
    assert status == 415 and "'Content-Type: application/json'" in problem["detail"]


def test_datasets_and_recipes_share_iso_timestamps_and_the_list_has_sizes(
    server, data_root, tmp_path
):
    body = json.dumps({"kind": "folder", "path": str(data_root / "pets")})
    status, record = curl("-X", "PUT", f"{server.url}/v1/datasets/pets", "--data-binary", body)
    assert status == 201, record
    assert record["size"] == 4 and record["classes"] == ["cats", "dogs"]
    status, recipe = curl(
        "-X", "PUT", f"{server.url}/v1/recipes/stamped", "--data-binary", '{"ops": []}'
    )
    assert status == 201, recipe
    for stamp in (record["created_at"], recipe["created_at"]):
        assert isinstance(stamp, str) and stamp.endswith("Z") and len(stamp) == 24, stamp
        assert abs(datetime.fromisoformat(stamp).timestamp() - datetime.now().timestamp()) < 600

    gone = json.dumps({"kind": "folder", "path": str(data_root / "gone")})
    assert curl("-X", "PUT", f"{server.url}/v1/datasets/gone", "--data-binary", gone)[0] == 201
    status, listed = curl(f"{server.url}/v1/datasets")
    assert status == 200
    entries = {d["name"]: d for d in listed["datasets"]}
    assert entries["pets"] == record
    assert entries["gone"]["size"] == 1 and entries["gone"]["classes"] == ["only"]
    status, single = curl(f"{server.url}/v1/datasets/pets")
    assert single == record


def test_a_dataset_that_cannot_be_read_is_listed_with_its_problem(
    start_augsvc, redis_server, data_root
):
    """Registered through one replica, its folder removed, listed by another replica
    (sharing Redis) that must open the source afresh: the entry says why, the others
    are listed as usual."""
    env = {"AUGSVC_DATA_ROOTS": str(data_root), "AUGSVC_REDIS_URL": redis_server.url,
           "AUGSVC_REDIS_PREFIX": "conventions"}  # fmt: skip
    first, second = start_augsvc(**env), start_augsvc(**env)
    folder = data_root / "vanishing"
    shutil.copytree(data_root / "gone", folder)
    for name, path in (("vanishing", folder), ("kept", data_root / "pets")):
        body = json.dumps({"kind": "folder", "path": str(path)})
        assert curl("-X", "PUT", f"{first.url}/v1/datasets/{name}", "--data-binary", body)[0] == 201
    shutil.rmtree(folder)
    status, listed = curl(f"{second.url}/v1/datasets")
    assert status == 200
    entries = {d["name"]: d for d in listed["datasets"]}
    assert entries["kept"]["size"] == 4
    broken = entries["vanishing"]
    assert broken["size"] is None and broken["classes"] is None
    assert broken["error"]["code"] and "vanishing" in broken["error"]["detail"]
    assert broken["created_at"].endswith("Z")
