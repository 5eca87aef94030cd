"""Recipe validation, canonical form, digest and references."""

from __future__ import annotations

import json

import pytest
import torch

from augsvc.engine import augment, compile_plan
from augsvc.errors import InvalidRecipe, InvalidReference, PayloadTooLarge, ValidationFailed
from augsvc.recipes import canonical_json, catalogue, digest, parse_recipe, parse_ref


def test_shorthands_share_a_digest_with_their_long_form():
    short = {"ops": [{"op": "rotate", "degrees": 30}, {"op": "hflip"}]}
    long = {
        "ops": [{"op": "rotate", "degrees": [-30, 30], "p": 1}, {"op": "hflip", "p": 0.5}],
        "output": {"dtype": "uint8", "fill": 0},
    }
    assert digest(parse_recipe(short)) == digest(parse_recipe(long))
    assert canonical_json(parse_recipe(short)) == canonical_json(parse_recipe(long))
    other = {"ops": [{"op": "rotate", "degrees": 31}, {"op": "hflip"}]}
    assert digest(parse_recipe(other)) != digest(parse_recipe(short))
    assert (
        digest(parse_recipe(short)).startswith("sha256:") and len(digest(parse_recipe(short))) == 71
    )


@pytest.mark.parametrize(
    ("document", "loc", "words"),
    [
        ({"ops": [{"op": "crop", "size": -3}]}, ["ops", 0, "size"], "positive"),
        ({"ops": [{"op": "hflip"}, {"op": "blur"}]}, ["ops", 1], "blur"),
        ({"ops": [{"op": "rotate"}]}, ["ops", 0, "degrees"], "required"),
        ({"ops": [{"op": "rotate", "degrees": [10, -10]}]}, ["ops", 0, "degrees"], "greater"),
        ({"ops": [{"op": "hflip", "p": 1.5}]}, ["ops", 0, "p"], "less than or equal"),
        ({"ops": [{"op": "resize", "size": [10, 10], "p": 0.5}]}, ["ops", 0], "p must be 1"),
        (
            {"ops": [{"op": "random_resized_crop", "size": 8, "scale": [0, 1]}]},
            ["ops", 0, "scale"],
            ">",
        ),
        ({"ops": [{"op": "gaussian_blur", "kernel_size": 4}]}, ["ops", 0, "kernel_size"], "odd"),
        ({"ops": [{"op": "color_jitter", "hue": 0.7}]}, ["ops", 0, "hue"], "0.5"),
        ({"ops": [{"op": "normalize"}, {"op": "hflip"}]}, [], "last"),
        ({"ops": [{"op": "hflip", "bogus": 1}]}, ["ops", 0, "bogus"], "not permitted"),
        ({"ops": [], "output": {"dtype": "int8"}}, ["output", "dtype"], "uint8"),
        ({"ops": "rotate"}, ["ops"], ""),
        # not numbers where numbers belong (schemathesis found the first as a 500)
        ({"ops": [{"op": "random_erasing", "ratio": [0, {}]}]}, ["ops", 0, "ratio"], "object"),
        ({"ops": [{"op": "rotate", "degrees": [0, "5"]}]}, ["ops", 0, "degrees"], "a string"),
        ({"ops": [{"op": "rotate", "degrees": [True, 5]}]}, ["ops", 0, "degrees"], "boolean"),
        ({"ops": [{"op": "affine", "shear": [0, 1, 2, None]}]}, ["ops", 0, "shear"], "null"),
        (
            {"ops": [{"op": "gaussian_blur", "kernel_size": 3, "sigma": [[1], 2]}]},
            ["ops", 0, "sigma"],
            "a list",
        ),
        # NaN and Infinity: Python's JSON and YAML parsers accept them
        ({"ops": [{"op": "rotate", "degrees": float("nan")}]}, ["ops", 0, "degrees"], "finite"),
        (
            {"ops": [{"op": "color_jitter", "brightness": [0, float("inf")]}]},
            ["ops", 0, "brightness"],
            "finite",
        ),
        (
            {"ops": [{"op": "normalize", "mean": [float("nan")] * 3, "std": [1, 1, 1]}]},
            ["ops", 0, "mean", 0],
            "finite",
        ),
    ],
)
def test_bad_recipes_name_the_field(document, loc, words):
    with pytest.raises(InvalidRecipe) as info:
        parse_recipe(document)
    err = info.value
    assert err.status == 422 and err.code == "invalid-recipe"
    assert err.errors[0].loc == tuple(loc)
    assert words in err.detail


def test_nan_in_a_json_body_is_refused_not_applied():
    """``json.loads`` turns the bare literal NaN into a float; it must not reach a matrix."""
    with pytest.raises(InvalidRecipe, match="finite"):
        parse_recipe(json.loads('{"ops": [{"op": "affine", "translate": [NaN, 0.1]}]}'))


def test_non_object_recipe_is_refused():
    with pytest.raises(InvalidRecipe, match="JSON object"):
        parse_recipe(["rotate"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flips", ("flips", None, None)),
        ("flips@3", ("flips", 3, None)),
        ("sha256:" + "a" * 64, (None, None, "sha256:" + "a" * 64)),
    ],
)
def test_references(text, expected):
    ref = parse_ref(text)
    assert (ref.name, ref.version, ref.digest) == expected
    assert str(ref) == text


@pytest.mark.parametrize("text", ["bad@ref@@", "Flips", "x@0", "sha256:abc", "", "a" * 65, "../x"])
def test_malformed_references(text):
    with pytest.raises(InvalidReference, match="reference"):
        parse_ref(text)


def test_catalogue_lists_every_op_with_a_schema():
    ops = {entry["op"]: entry for entry in catalogue()}
    assert {
        "rotate",
        "affine",
        "random_resized_crop",
        "crop",
        "resize",
        "pad",
        "hflip",
        "vflip",
        "perspective",
        "color_jitter",
        "grayscale",
        "gaussian_blur",
        "random_erasing",
        "normalize",
    } <= set(ops)
    assert "degrees" in ops["rotate"]["schema"]["properties"]
    assert ops["resize"]["changes_size"] is True


@pytest.mark.parametrize(
    "images",
    [
        [],
        [torch.zeros(3, 8, 8)],  # float, not uint8
        [torch.zeros(2, 8, 8, dtype=torch.uint8)],  # two channels
        [torch.zeros(3, 0, 8, dtype=torch.uint8)],  # empty
        [torch.zeros(8, 8, dtype=torch.uint8)],  # no channel axis
    ],
)
def test_bad_image_tensors_raise_a_typed_error(images):
    plan = compile_plan(parse_recipe({"ops": [{"op": "hflip"}]}))
    with pytest.raises(ValidationFailed):
        augment(plan, images, seed=0)


def test_output_pixel_limit():
    plan = compile_plan(parse_recipe({"ops": [{"op": "resize", "size": [100, 100]}]}))
    images = torch.zeros(4, 3, 10, 10, dtype=torch.uint8)
    with pytest.raises(PayloadTooLarge, match="40000 output pixels"):
        augment(plan, images, seed=0, max_output_pixels=39_999)
    assert augment(plan, images, seed=0, max_output_pixels=40_000).images.shape == (4, 3, 100, 100)


def test_bad_seed_and_keys():
    plan = compile_plan(parse_recipe({"ops": [{"op": "hflip"}]}))
    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValidationFailed):
        augment(plan, images, seed=0, keys=[1, -1])
    with pytest.raises(ValidationFailed):
        augment(plan, images, seed=0, keys=[1])
    with pytest.raises(ValidationFailed, match="seed"):
        augment(plan, images, seed=-5)
