"""The SDK against a real `augsvc serve` on loopback: recipes, every input type, errors,
and the pipelined iterator."""

from __future__ import annotations

import asyncio
import io
import uuid

import numpy as np
import pytest
import torch
import yaml
from augsvc_client import AsyncClient, Client, errors
from augsvc_client.request import SAFETENSORS, Call, decode_nothing
from PIL import Image

from tests.sdk_integration.keys import ADMIN_KEY, READ_KEY

pytestmark = pytest.mark.slow

RECIPE = {
    "ops": [
        {"op": "rotate", "degrees": 30},
        {"op": "hflip"},
        {"op": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4},
    ],
    "output": {"size": [20, 24]},
}


def unique(prefix: str = "sdk") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def photos(n: int = 5, h: int = 30, w: int = 40) -> np.ndarray:
    """(n, h, w, 3) uint8: smooth gradients plus noise, so augmentations differ visibly."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (h + w)], -1)
    return np.stack([(base + rng.integers(0, 40, base.shape)) % 256 for _ in range(n)]).astype(
        np.uint8
    )


def png_bytes(hwc: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(hwc).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def client(augsvc_url):
    with Client(augsvc_url) as c:
        yield c


@pytest.fixture
def recipe_name(client) -> str:
    name = unique()
    client.put_recipe(name, RECIPE)
    return name


# --- recipes -----------------------------------------------------------------------------


def test_recipe_round_trip(client, tmp_path):
    name = unique()
    first = client.put_recipe(name, RECIPE)
    assert (first["name"], first["version"]) == (name, 1)
    assert first["digest"].startswith("sha256:")
    assert client.put_recipe(name, RECIPE)["version"] == 1  # same content, same version

    path = tmp_path / "recipe.yaml"
    changed = {**RECIPE, "output": {"size": [16, 16]}}
    path.write_text(yaml.safe_dump(changed))
    second = client.put_recipe(name, path, if_match=first["digest"])
    assert second["version"] == 2

    assert client.get_recipe(name)["version"] == 2
    assert client.get_recipe(f"{name}@1")["digest"] == first["digest"]
    assert client.get_recipe(first["digest"])["version"] == 1
    assert [v["version"] for v in client.recipe_versions(name)] == [1, 2]
    assert name in {r["name"] for r in client.list_recipes()}

    with pytest.raises(errors.PreconditionFailed):
        client.put_recipe(name, RECIPE, if_match=first["digest"])  # stale: latest is v2

    client.delete_recipe(name)
    with pytest.raises(errors.RecipeNotFound):
        client.get_recipe(name)


def test_ops_and_preview(client, recipe_name):
    names = {op["name"] if "name" in op else op.get("op") for op in client.ops()}
    assert {"rotate", "hflip", "color_jitter"} <= names
    grid = client.preview(recipe_name, seed=1, n=4)
    assert grid.startswith(b"\x89PNG")
    assert grid == client.preview(recipe_name, seed=1, n=4)


# --- augment from every input type ---------------------------------------------------------


def test_every_input_type_gives_the_same_bytes(client, recipe_name, tmp_path):
    hwc = photos()
    encoded = [png_bytes(x) for x in hwc]
    paths = []
    for i, data in enumerate(encoded):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(data)
    chw = np.ascontiguousarray(hwc.transpose(0, 3, 1, 2))
    inputs = {
        "paths": paths,
        "str paths": [str(p) for p in paths],
        "bytes": encoded,
        "PIL": [Image.open(p) for p in paths],
        "numpy HWC": list(hwc),
        "numpy CHW": list(chw),
        "numpy NHWC": hwc,
        "torch batch": torch.from_numpy(chw),
        "torch list": [torch.from_numpy(x) for x in chw],
        "mixed": [paths[0], encoded[1], hwc[2], torch.from_numpy(chw[3]), Image.open(paths[4])],
    }
    reference = client.augment(chw, recipe_name, seed=42, offset=10)
    assert reference.images.shape == (5, 3, 20, 24) and reference.images.dtype == np.uint8
    assert reference.keys.tolist() == [10, 11, 12, 13, 14]
    assert reference.seed == 42
    assert reference.digest == client.get_recipe(recipe_name)["digest"]
    for name, images in inputs.items():
        got = client.augment(images, recipe_name, seed=42, offset=10)
        np.testing.assert_array_equal(got.images, reference.images, err_msg=name)
    inline = client.augment(paths, RECIPE, seed=42, offset=10)  # same content, same digest
    np.testing.assert_array_equal(inline.images, reference.images)
    assert inline.digest == reference.digest
    # And the draws really are seeded per sample: another seed or key changes them.
    assert not np.array_equal(client.augment(chw, recipe_name, seed=43).images, reference.images)


def test_the_server_seed_is_reported_and_reproduces(client, recipe_name):
    images = photos(2)
    first = client.augment(images, recipe_name)
    again = client.augment(images, recipe_name, seed=first.seed)
    np.testing.assert_array_equal(first.images, again.images)


def test_torch_output_and_params(client, recipe_name):
    batch = client.augment(photos(3), recipe_name, seed=1, return_params=True, output="torch")
    assert isinstance(batch.images, torch.Tensor) and batch.images.shape == (3, 3, 20, 24)
    assert batch.keys.tolist() == [0, 1, 2]
    assert batch.params["matrix"].shape == (3, 3, 3)
    assert client.augment(photos(1), recipe_name, seed=1).params == {}


def test_the_async_client_matches_the_sync_one(augsvc_url, client, recipe_name):
    images = photos(3)

    async def main():
        async with AsyncClient(augsvc_url) as aclient:
            return await aclient.augment(images, recipe_name, seed=5, offset=2)

    got = asyncio.run(main())
    np.testing.assert_array_equal(
        got.images, client.augment(images, recipe_name, seed=5, offset=2).images
    )


# --- augment_iter --------------------------------------------------------------------------


def labelled_dataset(n: int) -> list[tuple[np.ndarray, int]]:
    return [(image, i * 3) for i, image in enumerate(photos(n))]


def test_augment_iter_matches_one_big_call_and_keeps_labels(client, recipe_name):
    dataset = labelled_dataset(11)
    whole = client.augment([img for img, _ in dataset], recipe_name, seed=8)
    batches = list(
        client.augment_iter(dataset, batch_size=3, recipe=recipe_name, seed=8, prefetch=3)
    )
    assert [len(b) for b in batches] == [3, 3, 3, 2]
    np.testing.assert_array_equal(np.concatenate([b.images for b in batches]), whole.images)
    assert np.concatenate([b.keys for b in batches]).tolist() == list(range(11))
    assert np.concatenate([b.labels for b in batches]).tolist() == [i * 3 for i in range(11)]


def test_async_augment_iter_matches_too(augsvc_url, client, recipe_name):
    dataset = [img for img, _ in labelled_dataset(7)]
    whole = client.augment(dataset, recipe_name, seed=2)

    async def main():
        async with AsyncClient(augsvc_url) as aclient:
            return [
                b
                async for b in aclient.augment_iter(
                    dataset, 2, recipe_name, seed=2, prefetch=4, output="torch"
                )
            ]

    batches = asyncio.run(main())
    assert all(b.labels is None for b in batches)
    np.testing.assert_array_equal(torch.cat([b.images for b in batches]).numpy(), whole.images)


def test_augment_iter_without_a_seed_uses_one_seed_for_the_pass(client, recipe_name):
    batches = list(client.augment_iter(photos(4), 2, recipe_name))
    assert batches[0].seed == batches[1].seed


# --- errors --------------------------------------------------------------------------------


def test_unknown_recipe_is_recipe_not_found(client):
    with pytest.raises(errors.RecipeNotFound) as info:
        client.augment(photos(1), unique("missing"), seed=1)
    assert info.value.status == 404


def test_bad_recipe_is_invalid_recipe_with_field_errors(client):
    bad = {"ops": [{"op": "hflip"}, {"op": "rotate", "degrees": 1000}]}
    with pytest.raises(errors.InvalidRecipe) as info:
        client.put_recipe(unique(), bad)
    assert info.value.status == 422
    assert any(e.loc[:3] == ("ops", 1, "degrees") for e in info.value.errors)
    with pytest.raises(errors.InvalidRecipe):  # inline, too
        client.augment(photos(1), bad, seed=1)


def test_bad_reference_and_undecodable_image(client, recipe_name):
    with pytest.raises(errors.InvalidReference):
        client.get_recipe("sha256:not-hex")
    with pytest.raises(errors.UndecodableImage):
        client.augment([b"definitely not an image"], recipe_name, seed=1)


def test_wrong_media_types_are_415_and_406(client, recipe_name):
    params = {"recipe": recipe_name, "seed": "1"}
    with pytest.raises(errors.UnsupportedMediaType):
        client._send(
            Call("POST", "/v1/augment", decode_nothing, params=params, content=b"x",
                 headers={"Content-Type": "text/plain", "Accept": SAFETENSORS})
        )  # fmt: skip
    with pytest.raises(errors.NotAcceptable):
        client._send(
            Call("POST", "/v1/augment", decode_nothing, params=params, content=b"x",
                 headers={"Content-Type": SAFETENSORS, "Accept": "text/html"})
        )  # fmt: skip


def test_limits_are_413s(small_augsvc_url):
    with Client(small_augsvc_url) as small:
        name = unique()
        small.put_recipe(name, RECIPE)
        with pytest.raises(errors.TooManyImages) as info:
            small.augment(photos(5), name, seed=1)
        assert isinstance(info.value, errors.PayloadTooLarge) and info.value.status == 413
        big = np.zeros((2, 3, 120, 120), np.uint8)  # 86 KB > 64 KiB
        with pytest.raises(errors.PayloadTooLarge):
            small.augment(big, name, seed=1)


def test_keys_401_and_403(keyed_augsvc_url):
    name = unique()
    with Client(keyed_augsvc_url) as anonymous:
        with pytest.raises(errors.Unauthorized) as info:
            anonymous.list_recipes()
        assert info.value.status == 401
    with Client(keyed_augsvc_url, api_key="wrong") as wrong, pytest.raises(errors.Unauthorized):
        wrong.list_recipes()
    with Client(keyed_augsvc_url, api_key=READ_KEY) as reader:
        with pytest.raises(errors.Forbidden) as info:
            reader.put_recipe(name, RECIPE)
        assert info.value.status == 403
    with Client(keyed_augsvc_url, api_key=ADMIN_KEY) as admin:
        admin.put_recipe(name, RECIPE)
    with Client(keyed_augsvc_url, api_key=READ_KEY) as reader:
        assert reader.augment(photos(1), name, seed=1).images.shape == (1, 3, 20, 24)
