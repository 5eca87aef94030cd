"""Policies and combinators through a real server: GET /v1/ops documents each policy
with its expansion, bad definitions are 422 problems naming the field, and the
safetensors params say what each sample drew."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from tests.photos import photo_batch

POLICIES = {"rand_augment", "trivial_augment_wide", "auto_augment", "augmix", "timm_auto_augment"}


@pytest.fixture(scope="module")
def client(start_augsvc) -> Iterator[httpx.Client]:
    with start_augsvc(AUGSVC_ENGINE_THREADS="1").client() as c:
        yield c


def test_the_catalogue_documents_each_policy_and_combinator(client):
    ops = {e["op"]: e for e in client.get("/v1/ops").json()["ops"]}
    for name in POLICIES:
        entry = ops[name]
        assert entry["kind"] == "policy"
        assert ("timm" if name == "timm_auto_augment" else "torchvision") in entry["description"]
        assert entry["expansion"]["op"] == name
    table = ops["rand_augment"]["expansion"]["table"]
    assert [e["name"] for e in table][:4] == ["Identity", "ShearX", "ShearY", "TranslateX"]
    assert len(table[5]["magnitudes"]) == 31
    assert ops["timm_auto_augment"]["expansion"]["policy"]["increasing"] is True
    for name in ("one_of", "some_of", "random_order"):
        assert ops[name]["kind"] == "combinator"
        assert ops[name]["schema"]["properties"]["ops"]["items"]["required"] == ["op"]


@pytest.mark.parametrize(
    ("op", "field", "words"),
    [
        ({"op": "one_of", "ops": []}, "ops[0].ops", "at least 1"),
        ({"op": "some_of", "n": 5, "ops": [{"op": "invert"}]}, "ops[0].n", "only 1"),
        ({"op": "auto_augment", "policy": "coco"}, "ops[0].policy", "imagenet"),
        ({"op": "rand_augment", "magnitude": 40}, "ops[0].magnitude", "num_magnitude_bins"),
        (
            {"op": "timm_auto_augment", "config": "rand-m9-zz1"},
            "ops[0].config",
            "'zz1'",
        ),
    ],
)
def test_bad_definitions_are_422_naming_the_field(client, op, field, words):
    response = client.put("/v1/recipes/bad-policy", json={"ops": [op]})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "invalid-recipe"
    assert field in body["detail"] and words in body["detail"], body["detail"]


def test_safetensors_params_say_what_each_sample_drew(client):
    recipe = {"ops": [{"op": "random_resized_crop", "size": 32}, {"op": "rand_augment"}]}
    assert client.put("/v1/recipes/ra", json=recipe).status_code == 201
    images = photo_batch(6)
    response = client.post(
        "/v1/augment",
        params={"recipe": "ra", "seed": 3, "offset": 40},
        content=save_safetensors({"images": images}),
        headers={"Content-Type": "application/x-safetensors"},
    )
    assert response.status_code == 200, response.text
    tensors = load_safetensors(response.content)
    choice = tensors["params.ops.1.choice"]
    assert tuple(choice.shape) == (6, 2) and choice.dtype == torch.int64
    assert ((choice >= 0) & (choice < 14)).all()
    bins = tensors["params.ops.1.bin"]
    assert set(bins.flatten().tolist()) <= {-1, 9}
    value = tensors["params.ops.1.value"]
    for angle in value[choice == 5].tolist():  # Rotate: bin 9 of 0..30 degrees
        assert abs(angle) == pytest.approx(9.0, abs=1e-5)
    alone = client.post(
        "/v1/augment",
        params={"recipe": "ra", "seed": 3, "offset": 44, "return_params": "false"},
        content=save_safetensors({"images": images[4:].clone()}),
        headers={"Content-Type": "application/x-safetensors"},
    )
    assert torch.equal(load_safetensors(alone.content)["images"], tensors["images"][4:])
    assert np.isfinite(value.numpy()).all()
