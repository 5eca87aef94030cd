"""``output.channels`` defaults to 3, so a folder that mixes grey, colour, CMYK and alpha
files streams a whole epoch as one tensor a batch, as torchvision's ImageFolder loader
hands training code RGB. ``auto`` stays an explicit choice, and a record stored while
``auto`` was the default keeps meaning ``auto``: its digest pinned it.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid

import numpy as np
import pytest
import safetensors.numpy
import torch

from augsvc.datasets import epoch_order, sample_keys
from augsvc.datasets.stream import StreamRequest
from augsvc.engine import augment, compile_plan
from augsvc.recipes import canonical_document, digest, parse_recipe, stored_recipe
from tests.imagegen import image_bytes, png_bytes
from tests.mixes import alone_file
from tests.photos import photo, photo_batch
from tests.stream_frames import split_frames
from tests.test_golden_ops import CASES

SAFETENSORS = "application/x-safetensors"
CROP = {"ops": [{"op": "random_resized_crop", "size": [24, 24]}, {"op": "hflip"}]}


def with_channels(recipe: dict, channels: object) -> dict:
    return {**recipe, "output": {**recipe.get("output", {}), "channels": channels}}


def without_channels(recipe: dict) -> dict:
    output = {k: v for k, v in recipe.get("output", {}).items() if k != "channels"}
    return {**recipe, "output": output}


# --- the schema and the canonical form ------------------------------------------------------


def test_a_new_recipe_that_names_no_channels_is_rgb_and_says_so_in_its_canonical_form():
    recipe = parse_recipe(CROP)
    assert recipe.output.channels == 3
    assert canonical_document(recipe)["output"]["channels"] == 3
    assert digest(recipe) == digest(parse_recipe(with_channels(CROP, 3)))
    explicit = parse_recipe(with_channels(CROP, "auto"))
    assert explicit.output.channels == "auto"
    assert canonical_document(explicit)["output"]["channels"] == "auto"
    assert digest(explicit) != digest(recipe)


def test_a_stored_document_keeps_the_channels_it_was_stored_with():
    """What the store held before the default moved: canonical documents naming ``auto``
    (every record written so far) and, read the same way, one naming no channels."""
    for stored in (with_channels(CROP, "auto"), without_channels(CROP), {"ops": []}):
        recipe = stored_recipe(stored)
        assert recipe.output.channels == "auto", stored
        assert digest(recipe) == digest(parse_recipe(with_channels(stored, "auto")))
    for channels in (1, 3, 4, "auto"):
        assert stored_recipe(with_channels(CROP, channels)).output.channels == channels


# --- the engine: the default moves no RGB pixel ---------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_rgb_pixels_are_those_auto_gave_under_the_same_draws(case):
    """The default changes a recipe's digest, and so its draws; under the digest it had,
    an RGB batch comes out byte for byte as ``auto`` gave it, and a grey or RGBA sample
    comes out with three channels."""
    old = compile_plan(parse_recipe(with_channels(CASES[case], "auto")))
    new = compile_plan(parse_recipe(without_channels(CASES[case])))
    assert new.recipe.output.channels == 3 and new.digest != old.digest
    same_draws = dataclasses.replace(new, digest=old.digest)
    rgb = [*photo_batch(2), photo(61, 47)]
    want = augment(old, rgb, seed=20251201, offset=7)
    got = augment(same_draws, rgb, seed=20251201, offset=7)
    for a, b in zip(got.images, want.images, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b), case
    assert got.params.keys() == want.params.keys()
    for name, value in want.params.items():
        assert np.array_equal(got.params[name], value), (case, name)
    grey = photo(40, 50)[:1].contiguous()
    rgba = torch.cat([photo(40, 50), torch.full((1, 40, 50), 99, dtype=torch.uint8)])
    for sample in augment(same_draws, [grey, rgba], seed=3).images:
        assert sample.shape[0] == 3, case


# --- a real server: a mixed folder streams a whole epoch ------------------------------------

#: (name, Pillow format, mode, width, height): RGB, grey, CMYK and RGBA, JPEG and PNG,
#: of several sizes, as a scraped image folder holds them.
MIXED_FILES = (
    ("a-rgb.jpg", "JPEG", "RGB", 64, 48),
    ("b-grey.jpg", "JPEG", "L", 50, 40),
    ("c-cmyk.jpg", "JPEG", "CMYK", 40, 60),
    ("d-rgba.png", "PNG", "RGBA", 32, 32),
    ("e-grey.png", "PNG", "L", 70, 30),
    ("f-rgb.png", "PNG", "RGB", 36, 44),
    ("g-grey-alpha.png", "PNG", "LA", 30, 30),
    ("h-palette.png", "PNG", "P", 45, 35),
)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("channels-default")


@pytest.fixture(scope="module")
def server(start_augsvc, data_root):
    return start_augsvc(AUGSVC_DATA_ROOTS=str(data_root))


def mixed_folder(data_root) -> tuple[str, list[tuple[str, bytes]]]:
    name = f"mixed-{uuid.uuid4().hex[:10]}"
    folder = data_root / name
    folder.mkdir()
    named = []
    for i, (file_name, fmt, mode, w, h) in enumerate(MIXED_FILES):
        data = image_bytes(fmt, w, h, mode, seed=i)
        (folder / file_name).write_bytes(data)
        named.append((file_name, data))
    return name, named


@pytest.mark.parametrize("batch_size", [3, 8])
def test_a_folder_of_grey_colour_cmyk_and_alpha_files_streams_a_whole_epoch(
    server, data_root, batch_size
):
    """The recipe names no channels; every frame is (N, 3, 24, 24), each sample the
    engine's output for its file alone, and the epoch ends with every index once."""
    name, named = mixed_folder(data_root)
    folder = {"kind": "folder", "path": str(data_root / name)}
    with server.client() as c:
        assert c.put(f"/v1/datasets/{name}", json=folder).status_code == 201
        assert c.put(f"/v1/recipes/{name}", json=CROP).status_code == 201
        r = c.get(f"/v1/datasets/{name}/stream",
                  params={"recipe": name, "seed": 5, "batch_size": batch_size})  # fmt: skip
    assert r.status_code == 200, r.text
    got = list(split_frames([r.content]))
    plan = compile_plan(parse_recipe(CROP))
    order = epoch_order(len(named), 5, 0)
    batches = StreamRequest(seed=5, epoch=0, batch_size=batch_size).batches(len(named))
    assert len(got) == len(batches)
    seen = []
    for (tensors, meta), positions in zip(got, batches, strict=True):
        assert "error" not in meta, meta
        indices = order[positions]
        assert tensors["images"].shape == (len(positions), 3, 24, 24)
        assert tensors["indices"].tolist() == indices.tolist()
        keys = sample_keys(0, positions).tolist()
        for image, i, key in zip(tensors["images"], indices, keys, strict=True):
            assert np.array_equal(image, alone_file(plan, *named[i], 5, key).numpy())
        seen += indices.tolist()
    assert sorted(seen) == list(range(len(named)))


def test_a_safetensors_answer_holds_grey_and_colour_uploads_as_rgb(server):
    parts = [
        ("image", ("grey.png", png_bytes(40, 40, "L", seed=1), "image/png")),
        ("image", ("rgba.png", png_bytes(40, 40, "RGBA", seed=2), "image/png")),
        ("image", ("rgb.png", png_bytes(40, 40, "RGB", seed=3), "image/png")),
        ("recipe", ("r.json", json.dumps({"ops": [{"op": "rotate", "degrees": 10}]}),
                    "application/json")),
    ]  # fmt: skip
    with server.client() as c:
        r = c.post("/v1/augment", params={"seed": 1}, files=parts, headers={"Accept": SAFETENSORS})
    assert r.status_code == 200, r.text
    images = safetensors.numpy.load(r.content)["images"]
    assert images.shape == (3, 3, 40, 40)
    grey = images[0]
    assert np.array_equal(grey[0], grey[1]) and np.array_equal(grey[1], grey[2])


# --- a record stored the old way, on Redis --------------------------------------------------


def store_the_old_way(client, prefix: str, name: str, document: dict, recipe_digest: str) -> None:
    """One version written with the store's key layout, as a server before the default
    moved wrote it (or as a person wrote it by hand)."""
    record = json.dumps({"digest": recipe_digest, "created_at": time.time(), "document": document})
    client.hset(f"{prefix}:recipe:{name}", "1", record)
    client.set(f"{prefix}:recipe:{name}:last_version", 1)
    client.sadd(f"{prefix}:recipes", name)
    client.sadd(f"{prefix}:digest:{recipe_digest.removeprefix('sha256:')}", f"{name}@1")


def test_records_stored_under_auto_answer_as_auto_and_new_ones_as_rgb(start_augsvc, redis_server):
    import redis

    prefix = f"t-{uuid.uuid4().hex[:8]}"
    server = start_augsvc(AUGSVC_REDIS_URL=redis_server.url, AUGSVC_REDIS_PREFIX=prefix)
    recipe = {"ops": [{"op": "rotate", "degrees": 15}]}
    old_digest = digest(parse_recipe(with_channels(recipe, "auto")))
    old_canonical = with_channels(canonical_document(parse_recipe(recipe)), "auto")
    direct = redis.Redis.from_url(redis_server.url)
    try:
        store_the_old_way(direct, prefix, "canonical", old_canonical, old_digest)
        store_the_old_way(direct, prefix, "bare", recipe, old_digest)
    finally:
        direct.close()
    grey = [("image", ("grey.png", png_bytes(32, 32, "L", seed=4), "image/png"))]
    with server.client() as c:
        fresh = c.put("/v1/recipes/fresh", json=recipe)
        assert fresh.status_code == 201, fresh.text
        assert fresh.json()["recipe"]["output"]["channels"] == 3
        assert fresh.json()["digest"] != old_digest
        answers = {
            ref: c.post("/v1/augment", params={"recipe": ref, "seed": 2}, files=grey,
                        headers={"Accept": SAFETENSORS})
            for ref in ("canonical@1", "bare", old_digest, "fresh")
        }  # fmt: skip
    for ref, answer in answers.items():
        assert answer.status_code == 200, (ref, answer.text)
    shapes = {ref: safetensors.numpy.load(a.content)["images"].shape for ref, a in answers.items()}
    assert shapes["canonical@1"] == shapes["bare"] == shapes[old_digest] == (1, 1, 32, 32)
    assert shapes["fresh"] == (1, 3, 32, 32)
    for ref in ("canonical@1", "bare"):
        assert answers[ref].headers["X-Augsvc-Recipe-Digest"] == old_digest
        assert answers[ref].content == answers[old_digest].content
