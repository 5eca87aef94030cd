"""Schema-driven fuzzing of the real service with schemathesis.

Thousands of requests generated from the service's own OpenAPI document (path, query,
header and body values at and beyond every documented bound, then stateful sequences
that follow the links between operations) against a real ``augsvc serve``. It checks
what the service promises: bad input never gets a 5xx, and every answer has a status
and media type the document declares (problem+json for every error). It found a 500
for a dataset path whose name was too long for the filesystem.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.imagegen import png_bytes

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(scope="module")
def fuzzed(start_augsvc, tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("fuzz-data")
    for i in range(4):
        (root / "set" / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / "set" / f"class{i % 2}" / f"{i}.png").write_bytes(png_bytes(24, 20, seed=i))
    url = start_augsvc(AUGSVC_DATA_ROOTS=str(root), AUGSVC_MAX_IMAGES="8").url
    with httpx.Client(base_url=url) as client:  # something for lookups to find
        client.put("/v1/recipes/flip", json={"ops": [{"op": "hflip"}]}).raise_for_status()
        spec = {"kind": "folder", "path": str(root / "set")}
        client.put("/v1/datasets/set", json=spec).raise_for_status()
    return url


def test_generated_requests_get_no_5xx_and_only_documented_answers(fuzzed):
    result = subprocess.run(
        [
            str(SCHEMATHESIS), "run", f"{fuzzed}/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
            "--max-examples", "30", "--seed", "20261125", "--workers", "1",
            "--request-timeout", "30", "--no-color",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "generated" in result.stdout  # it really ran cases
    with httpx.Client(base_url=fuzzed) as client:  # and the service is still serving
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/recipes/flip").status_code == 200


def test_the_openapi_document_files_every_error_as_problem_json(fuzzed):
    document = httpx.get(f"{fuzzed}/openapi.json").json()
    assert "HTTPValidationError" not in str(document)  # FastAPI's default, not what we send
    assert set(document["components"]["schemas"]["Problem"]["required"]) >= {
        "type", "title", "status", "detail", "code",
    }  # fmt: skip
    errors = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    errors += 1
                    assert list(response["content"]) == ["application/problem+json"], (
                        method, path, status,
                    )  # fmt: skip
                    schema = response["content"]["application/problem+json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Problem"}
    assert errors > 40
    augment = document["paths"]["/v1/augment"]["post"]["responses"]
    assert {"400", "401", "403", "404", "406", "413", "415", "422", "503"} <= set(augment)
    assert "`too-many-images`" in augment["413"]["description"]
    assert set(augment["200"]["content"]) == {"application/x-safetensors", "application/zip"}
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert [media.split(";")[0] for media in metrics] == ["text/plain"]
