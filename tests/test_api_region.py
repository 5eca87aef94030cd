"""JPEG uploads through a real ``augsvc serve``, where the region decoder decodes only
what each sample reads: over generated mixes of sizes, subsamplings, progressive and
grey files, EXIF orientations, recipes and seeds, the service answers exactly the bytes
of the engine run in process on whole decodes; and a recipe that does not start with a
warp, whose uploads the region decoder decodes whole, gets the bytes of the engine on
Pillow's pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load as load_safetensors

from augsvc.codec import decode as decoding
from augsvc.codec import jpeg_region, probe_image
from augsvc.engine import augment, compile_plan, starts_with_warp
from augsvc.pipeline.decode import PlannedDecode, plan_decode
from augsvc.recipes import parse_recipe
from tests import imagegen
from tests.photos import photo

pytestmark = pytest.mark.skipif(
    not jpeg_region.AVAILABLE,
    reason="the region decoder (augsvc/codec/_jpeg_region.c) is not built",
)

CROPS = st.sampled_from(
    [
        [{"op": "random_resized_crop", "size": 40}],
        [{"op": "random_resized_crop", "size": [24, 36], "scale": [0.05, 0.4]}, {"op": "hflip"}],
        [{"op": "rotate", "degrees": 30}, {"op": "random_resized_crop", "size": 32}],
        [{"op": "resize", "size": [20, 28]}],
    ]
)
JPEGS = st.fixed_dictionaries(
    {
        "hw": st.sampled_from([(240, 320), (333, 251), (97, 130), (600, 800)]),
        "subsampling": st.sampled_from([0, 1, 2]),
        "progressive": st.booleans(),
        "orientation": st.sampled_from([None, 3, 6, 8]),
        "grey": st.booleans(),
    }
)


def _jpeg(spec: dict) -> bytes:
    array = photo(*spec["hw"]).permute(1, 2, 0).numpy()
    image = Image.fromarray(array).convert("L") if spec["grey"] else Image.fromarray(array)
    options: dict[str, object] = {
        "quality": 90,
        "subsampling": spec["subsampling"],
        "progressive": spec["progressive"],
    }
    if spec["orientation"] is not None:
        options["exif"] = imagegen.exif_with_orientation(spec["orientation"])
    return imagegen.encode(image, "JPEG", **options)


def _augmented(client, recipe: dict, uploads: list[bytes], seed: int, offset: int):
    """The service's images for the JPEG ``uploads`` under ``recipe``, as one tensor."""
    files = [("images", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(uploads)]
    files.append(("recipe", (None, json.dumps(recipe))))
    answer = client.post(
        "/v1/augment",
        params={"seed": seed, "offset": offset, "return_params": "false"},
        files=files,
        headers={"Accept": "application/x-safetensors"},
    )
    assert answer.status_code == 200, answer.text
    return load_safetensors(answer.content)["images"]


@pytest.fixture(scope="module")
def client(start_augsvc):
    with start_augsvc().client() as c:
        yield c


#: Examples that each make a request to the module's server.
SERVED = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
#: A request's uploads, seed and offset.
REQUESTS = {
    "specs": st.lists(JPEGS, min_size=1, max_size=3),
    "seed": st.integers(0, 2**63 - 1),
    "offset": st.integers(0, 10**6),
}


@settings(SERVED, max_examples=20)
@given(crop=CROPS, **REQUESTS)
def test_the_service_answers_the_whole_decodes_bytes(client, crop, specs, seed, offset) -> None:
    recipe = {"ops": crop, "output": {"channels": 3}}
    uploads = [_jpeg(spec) for spec in specs]
    got = _augmented(client, recipe, uploads, seed, offset)

    plan = compile_plan(parse_recipe(recipe))
    keys = np.arange(offset, offset + len(uploads))
    planned = plan_decode(
        plan, [probe_image(d, max_pixels=10**8) for d in uploads], seed=seed, keys=keys
    )
    assert planned.boxes is not None  # the service's plan decodes regions too
    whole = PlannedDecode([probe_image(d, max_pixels=10**8) for d in uploads], planned.scales)
    expected = augment(plan, whole.decode(), seed=seed, keys=keys).images
    assert torch.equal(got, expected)


#: Ops that read the whole image before any warp (a linear colour op would move after
#: the geometry, which then plans scaled region decodes).
PIXELS_FIRST = st.sampled_from(
    [
        [{"op": "equalize", "p": 0.5}, {"op": "random_resized_crop", "size": 24}],
        [{"op": "autocontrast"}, {"op": "rotate", "degrees": 20}],
        [{"op": "gaussian_blur", "kernel_size": 5, "sigma": [0.5, 1.5]}, {"op": "hflip"}],
        [{"op": "posterize", "bits": 4, "p": 0.5}, {"op": "resize", "size": [20, 28]}],
    ]
)


@settings(SERVED, max_examples=15)
@given(ops=PIXELS_FIRST, **REQUESTS)
def test_whole_decodes_through_the_service_are_pillows_pixels(client, ops, specs, seed, offset):
    """A plan that does not start with a warp decodes every upload whole, through the
    region decoder over the whole image: the answer is the engine's on Pillow's pixels."""
    recipe = {"ops": ops, "output": {"channels": 3, "size": [32, 32]}}
    plan = compile_plan(parse_recipe(recipe))
    assert not starts_with_warp(plan)
    uploads = [_jpeg(spec) for spec in specs]
    got = _augmented(client, recipe, uploads, seed, offset)
    pillow = [decoding._decode(d, max_pixels=10**8, name="x", fast=False) for d in uploads]
    keys = np.arange(offset, offset + len(uploads))
    assert torch.equal(got, augment(plan, pillow, seed=seed, keys=keys).images)
