"""A sample's output depends on the sample alone, whatever its batch-mates' channel
counts and sizes: in-process, over multipart files and safetensors, against a real
server. Mixed channel counts never fail a batch; a tensor answer that cannot hold them
is the documented 422 naming ``output.channels``."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from augsvc.engine import augment, compile_plan
from augsvc.recipes import parse_recipe
from tests.mixes import (
    EDGE_SIZES,
    alone,
    alone_file,
    assert_in_documented_range,
    expected_channels,
    files,
    random_image,
    recipes,
    tensor_batches,
)

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERVER_PROPERTY = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
seeds = st.integers(0, 2**64 - 1)
offsets = st.integers(0, 2**40)
SAFETENSORS = "application/x-safetensors"


@pytest.fixture(scope="module")
def server(start_augsvc):
    return start_augsvc()


# --- in-process -----------------------------------------------------------------------------


@PROPERTY
@given(recipe=recipes(), images=tensor_batches(), seed=seeds, offset=offsets)
def test_engine_sample_equals_sample_alone(recipe, images, seed, offset):
    plan = compile_plan(parse_recipe(recipe))
    result = augment(plan, images, seed=seed, offset=offset)
    expected = [alone(plan, img, seed, offset + i) for i, img in enumerate(images)]
    assert isinstance(result.images, torch.Tensor) == (len({e.shape for e in expected}) == 1)
    for i, (img, want) in enumerate(zip(images, expected, strict=True)):
        got = result.images[i]
        assert want.shape[0] == expected_channels(plan, img)
        assert got.dtype == want.dtype and torch.equal(got, want), i
        assert_in_documented_range(plan, got)


@PROPERTY
@given(
    recipe=recipes(),
    channels=st.sampled_from([1, 3, 4]),
    size=st.sampled_from([*EDGE_SIZES, (9, 13)]),
    n=st.integers(1, 5),
    seed=seeds,
)
def test_engine_tensor_batch_equals_samples_alone(recipe, channels, size, n, seed):
    """An (N, C, H, W) tensor: each of its samples alone gives the same bytes."""
    plan = compile_plan(parse_recipe(recipe))
    batch = torch.stack([random_image(channels, *size, seed=i) for i in range(n)])
    result = augment(plan, batch, seed=seed, offset=3)
    assert isinstance(result.images, torch.Tensor)
    assert result.images.shape[1] == expected_channels(plan, batch[0])
    for i in range(n):
        assert torch.equal(result.images[i], alone(plan, batch[i], seed, 3 + i))
        assert_in_documented_range(plan, result.images[i])


# --- a real server --------------------------------------------------------------------------


def _tensor_problem_fields(expected: list[torch.Tensor]) -> set[str]:
    """The recipe fields a 422 must name when one tensor cannot hold every sample."""
    fields = set()
    if len({e.shape[0] for e in expected}) > 1:
        fields.add("channels")
    if len({e.shape[1:] for e in expected}) > 1:
        fields.add("size")
    return fields


def _check_tensor_answer(r, expected: list[torch.Tensor], plan) -> None:
    fields = _tensor_problem_fields(expected)
    if fields:
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["code"] == "validation-failed"
        assert {tuple(e["loc"]) for e in problem["errors"]} == {
            ("recipe", "output", f) for f in fields
        }
        for f in fields:
            assert f"output.{f}" in problem["detail"]
        assert "application/zip" in problem["detail"]
        return
    assert r.status_code == 200, r.text
    images = safetensors.torch.load(r.content)["images"]
    assert len(images) == len(expected)
    for i, want in enumerate(expected):
        assert torch.equal(images[i], want), i
        assert_in_documented_range(plan, images[i])


def _png_pixels(data: bytes) -> torch.Tensor:
    array = np.asarray(Image.open(io.BytesIO(data)))
    array = array[..., None] if array.ndim == 2 else array
    return torch.from_numpy(np.moveaxis(array, -1, 0).copy())


@SERVER_PROPERTY
@given(recipe=recipes(), upload=files(), seed=st.integers(0, 2**63), offset=offsets)
def test_multipart_batch_equals_samples_alone(server, recipe, upload, seed, offset):
    """JPEG/PNG/WebP/GIF/TIFF files of mixed modes and sizes: 200 (or the documented
    422 for one tensor), and each sample equals the engine on that file alone."""
    plan = compile_plan(parse_recipe(recipe))
    expected = [alone_file(plan, *f, seed, offset + i) for i, f in enumerate(upload)]
    parts = [("image", (name, data, "application/octet-stream")) for name, data in upload]
    parts.append(("recipe", ("recipe.json", json.dumps(recipe).encode(), "application/json")))
    query = {"seed": seed, "offset": offset}
    with server.client() as c:
        r = c.post("/v1/augment", params=query, files=parts, headers={"Accept": SAFETENSORS})
        _check_tensor_answer(r, expected, plan)
        if plan.out_dtype != "uint8":
            return
        r = c.post("/v1/augment", params=query, files=parts, headers={"Accept": "application/zip"})
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        names = archive.namelist()
        assert names == [f"{i:06d}.png" for i in range(len(upload))]
        for name, want in zip(names, expected, strict=True):
            assert torch.equal(_png_pixels(archive.read(name)), want), name


@SERVER_PROPERTY
@given(
    recipe=recipes(),
    channels=st.sampled_from([1, 3, 4]),
    size=st.sampled_from([*EDGE_SIZES, (17, 11)]),
    n=st.integers(1, 4),
    seed=st.integers(0, 2**63),
)
def test_safetensors_batch_equals_samples_alone(server, recipe, channels, size, n, seed):
    plan = compile_plan(parse_recipe(recipe))
    batch = torch.stack([random_image(channels, *size, seed=seed % 997 + i) for i in range(n)])
    expected = [alone(plan, batch[i], seed, 5 + i) for i in range(n)]
    body = safetensors.torch.save({"images": batch})
    with server.client() as c:
        # a safetensors body carries no recipe part: store the recipe and refer to it
        stored = c.put("/v1/recipes/channels-prop", json=recipe)
        assert stored.status_code in (200, 201), stored.text
        r = c.post(
            "/v1/augment",
            params={"recipe": stored.json()["ref"], "seed": seed, "offset": 5},
            content=body,
            headers={"Content-Type": SAFETENSORS, "Accept": SAFETENSORS},
        )
    _check_tensor_answer(r, expected, plan)
    if r.status_code == 200:
        keys = safetensors.numpy.load(r.content)["keys"]
        assert keys.tolist() == list(range(5, 5 + n))


# --- the cases users reported, as plain examples --------------------------------------------


def _grey_and_rgb_pngs(size: int = 64) -> list[tuple[str, tuple[str, bytes, str]]]:
    from tests.imagegen import png_bytes

    return [
        ("image", ("grey.png", png_bytes(size, size, "L", seed=1), "image/png")),
        ("image", ("rgb.png", png_bytes(size, size, "RGB", seed=2), "image/png")),
    ]


def test_grey_and_rgb_of_one_size_answer_200_as_zip_and_422_naming_channels(server):
    recipe = {"ops": [{"op": "rotate", "degrees": 20}, {"op": "color_jitter", "brightness": 0.3}],
              "output": {"channels": "auto"}}  # fmt: skip
    parts = [*_grey_and_rgb_pngs(), ("recipe", ("r.json", json.dumps(recipe), "application/json"))]
    with server.client() as c:
        z = c.post("/v1/augment", params={"seed": 1}, files=parts,
                   headers={"Accept": "application/zip"})  # fmt: skip
        t = c.post("/v1/augment", params={"seed": 1}, files=parts, headers={"Accept": SAFETENSORS})
    assert z.status_code == 200, z.text
    with zipfile.ZipFile(io.BytesIO(z.content)) as archive:
        shapes = [_png_pixels(archive.read(n)).shape for n in archive.namelist()]
    assert shapes == [(1, 64, 64), (3, 64, 64)]
    assert t.status_code == 422, t.text
    problem = t.json()
    assert [e["loc"] for e in problem["errors"]] == [["recipe", "output", "channels"]]
    assert "output.channels: 3" in problem["detail"]


def test_grey_keeps_its_bytes_next_to_colour_and_alpha_batch_mates():
    recipe = {"ops": [{"op": "color_jitter", "brightness": 0.4}], "output": {"channels": "auto"}}
    plan = compile_plan(parse_recipe(recipe))
    grey = random_image(1, 30, 30, seed=4)
    want = alone(plan, grey, 9, 0)
    for mate in (random_image(3, 30, 30, seed=5), random_image(4, 30, 30, seed=6)):
        got = augment(plan, [grey, mate], seed=9, keys=[0, 1]).images
        assert isinstance(got, list)
        assert got[0].shape == (1, 30, 30) and torch.equal(got[0], want)


def test_float32_never_leaves_the_unit_range_even_with_bicubic_overshoot():
    white = torch.full((2, 3, 40, 40), 255, dtype=torch.uint8)
    for interpolation in ("bilinear", "bicubic"):
        recipe = {
            "ops": [{"op": "rotate", "degrees": [17, 17]}, {"op": "resize", "size": [23, 31]}],
            "output": {"dtype": "float32", "interpolation": interpolation},
        }
        out = augment(compile_plan(parse_recipe(recipe)), white, seed=0).images
        assert out.max() <= 1.0 and out.min() >= 0.0
        assert out.max() == 1.0  # the clamp does not darken white
