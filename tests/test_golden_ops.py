"""Golden bytes: a sample's pixels and drawn parameters for every op, pinned.

The hashes were written by the engine as it was before the code moved to one module
per op, rewritten when the first warp became region-first (only its resampling's
last bits moved, within the bound ``test_engine_region`` states) and when the
antialiasing pre-shrink became a power of two that keeps partial edge blocks (the
shrinking cases moved, towards torchvision's antialiased resize); any later change
that alters a single byte of any op's output (or a draw's slot, or a record name)
fails here. A deliberate change of an op's maths regenerates them with
``python -m tests.test_golden_ops`` and says why in its commit; a new op's cases are
added with ``python -m tests.test_golden_ops --new``, which leaves every other hash as
it is.

Every op's drawn parameters (the ``params.ops.*`` hashes) are counter-based draws put
through float64 arithmetic, a function of the recipe, seed, keys and input sizes alone,
so they are checked on every machine, in this process, except where a draw reads one
of torchvision's magnitude tables (:data:`TORCH_TABLES`): those are ``torch.linspace``
in float32, as torchvision computes them, and torch's scalar and vector kernels round
their last bits apart. Each sample's composed matrix (``params.matrix``) is not CPU
independent either: its products go through BLAS and a perspective's homography
through a LAPACK solve, whose kernels round by the CPU (OpenBLAS's SSE3 kernels move a
dozen cases' matrices, its AVX-512 ones the perspective cases'). Those are checked with
the pixels.

The pixel, matrix and table-draw hashes are written and checked with the CPU libraries
held to one SIMD level
(:data:`PINNED_SIMD`, in a child process, since they read it when they load): MKL's
GEMM, OpenBLAS's LAPACK and ATen's kernels pick their code by the CPU's vector width,
and the AVX2 and AVX-512 kernels round some last bits differently. Without the pin the
hashes would hold on one kind of machine and fail on the next; across levels the test
below holds the pixels to one grey level instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from augsvc.engine import augment, compile_plan, sample_plan
from augsvc.recipes import parse_recipe
from tests.photos import photo, photo_batch

GOLDEN = Path(__file__).parent / "data" / "golden_ops.json"
ROOT = Path(__file__).resolve().parent.parent

#: AVX2, which every x86-64 server since 2013 has: the level the hashes are written at.
PINNED_SIMD = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
}
#: Cases whose maths goes through GEMM or LAPACK (colour maps, homographies).
SIMD_SENSITIVE = ("color_jitter", "every_op", "grayscale", "perspective")

CASES: dict[str, dict[str, Any]] = {
    "rotate": {"ops": [{"op": "rotate", "degrees": 40}]},
    "affine": {
        "ops": [
            {"op": "affine", "degrees": 15, "translate": [0.1, 0.2], "scale": [0.7, 1.3],
             "shear": [-8, 8, -4, 4]}
        ]
    },
    "random_resized_crop": {"ops": [{"op": "random_resized_crop", "size": [64, 48]}]},
    "crop_random": {"ops": [{"op": "crop", "size": [90, 200], "position": "random"}]},
    "crop_center": {"ops": [{"op": "crop", "size": [50, 50]}]},
    "resize_short": {"ops": [{"op": "resize", "size": 56}]},
    "resize_hw": {"ops": [{"op": "resize", "size": [33, 71]}]},
    "pad": {"ops": [{"op": "pad", "padding": [3, 1, 4, 2]}]},
    "hflip": {"ops": [{"op": "hflip"}]},
    "vflip": {"ops": [{"op": "vflip", "p": 0.7}]},
    "perspective": {"ops": [{"op": "perspective", "distortion_scale": 0.6, "p": 0.8}]},
    "color_jitter": {
        "ops": [{"op": "color_jitter", "brightness": 0.5, "contrast": 0.5, "saturation": 0.5,
                 "hue": 0.2}]
    },
    "grayscale": {"ops": [{"op": "grayscale", "p": 0.5}]},
    "gaussian_blur": {"ops": [{"op": "gaussian_blur", "kernel_size": [5, 9], "sigma": [0.5, 3]}]},
    "random_erasing": {"ops": [{"op": "random_erasing", "p": 0.9, "value": [10, 200, 30]}]},
    "normalize": {"ops": [{"op": "rotate", "degrees": 5}, {"op": "normalize"}]},
    "output_options": {
        "ops": [{"op": "rotate", "degrees": 90}, {"op": "hflip"}],
        "output": {"size": [40, 52], "interpolation": "bicubic", "padding_mode": "reflection"},
    },
    "fill_nearest": {
        "ops": [{"op": "affine", "degrees": 30, "scale": [0.5, 0.9]}],
        "output": {"fill": [200, 100, 50], "interpolation": "nearest"},
    },
    "every_op": {
        "ops": [
            {"op": "pad", "padding": [4, 2, 6, 8]},
            {"op": "affine", "degrees": 10, "translate": [0.1, 0.1], "scale": [0.8, 1.2],
             "shear": 5},
            {"op": "perspective", "distortion_scale": 0.3, "p": 0.7},
            {"op": "crop", "size": [100, 130], "position": "random"},
            {"op": "vflip"},
            {"op": "color_jitter", "brightness": 0.3, "contrast": 0.3, "saturation": 0.3,
             "hue": 0.05},
            {"op": "grayscale", "p": 0.3},
            {"op": "resize", "size": [48, 64]},
            {"op": "gaussian_blur", "kernel_size": 5, "sigma": [0.1, 2.0]},
            {"op": "random_erasing", "p": 0.5, "value": [255, 0, 0]},
        ]
    },
    "posterize": {"ops": [{"op": "posterize", "bits": [1, 6], "p": 0.8}]},
    "solarize": {"ops": [{"op": "solarize", "threshold": [50, 220], "p": 0.8}]},
    "equalize": {"ops": [{"op": "rotate", "degrees": 20}, {"op": "equalize", "p": 0.7}]},
    "autocontrast": {"ops": [{"op": "autocontrast", "p": 0.7}]},
    "invert": {"ops": [{"op": "invert", "p": 0.6}]},
    "sharpness": {"ops": [{"op": "sharpness", "factor": [0.0, 2.0], "p": 0.9}]},
    "shear": {"ops": [{"op": "shear", "x": 20, "y": [-5, 10], "p": 0.9}]},
    "shear_corner": {"ops": [{"op": "shear", "x": [-16.7, 16.7], "center": [0, 0]}]},
    "translate": {"ops": [{"op": "translate", "x": 0.2, "y": [-9, 4.5], "p": 0.9}]},
    "translate_fraction": {"ops": [{"op": "translate", "x": 0.3, "y": 0.1, "units": "fraction"}]},
    "brightness": {"ops": [{"op": "brightness", "factor": [0.2, 1.8], "p": 0.9}]},
    "contrast": {"ops": [{"op": "contrast", "factor": [0.2, 1.8], "p": 0.9}]},
    "saturation": {"ops": [{"op": "saturation", "factor": [0.0, 2.0], "p": 0.9}]},
    "hue": {"ops": [{"op": "hue", "factor": 0.4, "p": 0.9}]},
    "solarize_add": {"ops": [{"op": "solarize_add", "add": [10, 90], "p": 0.9}]},
    "one_of": {
        "ops": [{"op": "one_of", "weights": [1, 2, 1], "ops": [
            {"op": "rotate", "degrees": 30}, {"op": "posterize", "bits": 3},
            {"op": "brightness", "factor": [0.5, 1.5]}]}]
    },
    "some_of": {
        "ops": [{"op": "some_of", "n": 2, "p": 0.9, "ops": [
            {"op": "shear", "x": 15}, {"op": "equalize"}, {"op": "contrast", "factor": 0.5},
            {"op": "solarize", "threshold": 128}]}]
    },
    "random_order": {
        "ops": [{"op": "random_order", "ops": [
            {"op": "translate", "x": 10}, {"op": "invert", "p": 0.5},
            {"op": "hue", "factor": 0.1}]}]
    },
    "rand_augment": {
        "ops": [{"op": "random_resized_crop", "size": [56, 48]}, {"op": "hflip"},
                {"op": "rand_augment", "num_ops": 2, "magnitude": 9}]
    },
    "trivial_augment_wide": {"ops": [{"op": "trivial_augment_wide"}]},
    "auto_augment": {"ops": [{"op": "auto_augment", "policy": "imagenet"}]},
    "augmix": {"ops": [{"op": "augmix", "severity": 4}]},
    "timm_rand": {"ops": [{"op": "timm_auto_augment", "config": "rand-m9-mstd0.5-inc1"}]},
    "timm_augmix": {"ops": [{"op": "timm_auto_augment", "config": "augmix-m5-w3"}]},
}  # fmt: skip
#: The hashes were written while ``output.channels`` defaulted to ``auto``, and a
#: recipe's digest seeds its every draw: each case names ``auto``, so the default's move
#: to 3 leaves every hash (and the grey and RGBA samples' own channel counts) as written.
CASES = {
    case: {**recipe, "output": {"channels": "auto", **recipe.get("output", {})}}
    for case, recipe in CASES.items()
}


#: Cases with a tone op after a warp (solarize, posterize...): where the two paths' last
#: bit of resampling falls on either side of a level the op steps at, the op turns one
#: grey level into many, so their bound is on how many pixels differ by more than one.
AMPLIFIED = {"rand_augment", "random_order", "some_of", "one_of", "trivial_augment_wide",
             "auto_augment", "augmix", "timm_rand", "timm_augmix", "equalize"}  # fmt: skip


def _inputs() -> dict[str, list[torch.Tensor]]:
    """An RGB batch of several sizes (shrinking and enlarging warps), and grey and RGBA
    images alone (each sample's channel count is its own)."""
    rgb = [*photo_batch(4), photo(300, 400), photo(61, 47)]
    grey = photo(80, 100)[:1].contiguous()
    rgba = torch.cat([photo(70, 90), torch.full((1, 70, 90), 180, dtype=torch.uint8)])
    return {"rgb": rgb, "grey": [grey], "rgba": [rgba]}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]


SEED, OFFSET = 20251201, 7


def fingerprint(recipe: dict[str, Any]) -> dict[str, str]:
    """sha256 of every sample's pixels and of every drawn parameter array."""
    plan = compile_plan(parse_recipe(recipe))
    out: dict[str, str] = {}
    for name, images in _inputs().items():
        result = augment(plan, images, seed=SEED, offset=OFFSET)
        samples = result.images if isinstance(result.images, list) else result.images.unbind(0)
        for i, img in enumerate(samples):
            out[f"{name}.{i}"] = _sha(img.contiguous().numpy().tobytes())
        if name == "rgb":
            for key, value in sorted(result.params.items()):
                out[f"params.{key}"] = _sha(np.ascontiguousarray(value).tobytes())
    return out


#: The hashes of every op's draws; the rest (pixels, matrices) depend on the CPU.
DRAWS = "params.ops."
#: Cases whose draws read torchvision's policy magnitude tables (torch.linspace).
TORCH_TABLES = frozenset({"augmix", "auto_augment", "rand_augment", "trivial_augment_wide"})


def everywhere(case: str, key: str) -> bool:
    """Whether a hash is the same on every CPU (checked unpinned, in this process)."""
    return key.startswith(DRAWS) and case not in TORCH_TABLES


def draw_fingerprint(recipe: dict[str, Any]) -> dict[str, str]:
    """The draws' part of :func:`fingerprint`, without rendering a pixel: what augment()
    records for the RGB batch is what sample_plan() draws for its keys (``OFFSET + i``)
    and input sizes."""
    plan = compile_plan(parse_recipe(recipe))
    rgb = _inputs()["rgb"]
    full_hw = np.array([img.shape[-2:] for img in rgb], dtype=np.int64)
    record = sample_plan(plan, SEED, OFFSET + np.arange(len(rgb)), full_hw).record
    return {
        f"params.{key}": _sha(np.ascontiguousarray(value).tobytes())
        for key, value in sorted(record.items())
        if f"params.{key}".startswith(DRAWS)
    }


def _golden(case: str, *, anywhere: bool) -> dict[str, str]:
    """The golden hashes of ``case`` that hold on every CPU, or the others."""
    hashes = json.loads(GOLDEN.read_text())[case]
    return {k: v for k, v in hashes.items() if everywhere(case, k) == anywhere}


@pytest.mark.parametrize("case", sorted(set(CASES) - TORCH_TABLES))
def test_drawn_parameters_are_pinned_on_every_cpu(case: str) -> None:
    """Draws, slots and record names, on whatever CPU runs the suite: no SIMD pin, no
    skip (pad and resize draw nothing, and record nothing)."""
    assert draw_fingerprint(CASES[case]) == _golden(case, anywhere=True)


def _pinned(*args: str) -> str:
    """Run this module in a child whose CPU libraries are held to :data:`PINNED_SIMD`."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the golden hashes are written for x86-64 at the AVX2 level")
    env = {**os.environ, **PINNED_SIMD}
    command = [sys.executable, "-m", "tests.test_golden_ops", *args]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def pinned_fingerprints() -> dict[str, dict[str, str]]:
    return json.loads(_pinned("--print"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_output_bytes_are_pinned(case: str, pinned_fingerprints) -> None:
    """Pixels, composed matrices and the draws from torch's tables, at the pinned SIMD
    level on x86-64 (the other draws are checked above, everywhere)."""
    pinned = pinned_fingerprints[case]
    assert {k: v for k, v in pinned.items() if not everywhere(case, k)} == _golden(
        case, anywhere=False
    )


def test_every_simd_level_agrees_within_one_grey_level(tmp_path: Path) -> None:
    """This machine's own kernels (AVX-512 where it has it) against the pinned level: the
    same draws and matrices to float rounding, pixels within one grey level."""
    pinned = tmp_path / "pinned.pt"
    _pinned("--save", str(pinned))
    theirs = torch.load(pinned)
    for case in SIMD_SENSITIVE:
        ours = _outputs(CASES[case])
        for name, image in ours.items():
            diff = (image.double() - theirs[case][name].double()).abs()
            assert diff.max() <= 1, (case, name)
            assert diff.mean() < 0.01, (case, name)


def _outputs(recipe: dict[str, Any]) -> dict[str, torch.Tensor]:
    plan = compile_plan(parse_recipe(recipe))
    out = {}
    for name, images in _inputs().items():
        result = augment(plan, images, seed=SEED, offset=OFFSET)
        for i, img in enumerate(result.images):
            out[f"{name}.{i}"] = img.contiguous()
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_region_first_stays_within_its_bound_of_the_whole_image_path(case: str) -> None:
    """The hashes above are the region-first engine's. The whole-image path they were
    first written by stays callable; on the same inputs the two differ by at most one
    grey level (nearest: where a rounding tie picks the neighbouring pixel, rarely;
    a tone op after the warp: see ``AMPLIFIED``)."""
    plan = compile_plan(parse_recipe(CASES[case]))
    nearest = plan.recipe.output.interpolation == "nearest"
    for images in _inputs().values():
        new, old = (
            augment(plan, images, seed=SEED, offset=OFFSET, region_first=rf).images
            for rf in (True, False)
        )
        for a, b in zip(new, old, strict=True):
            diff = (a.double() - b.double()).abs()
            if nearest:
                assert (diff > 0).double().mean() < 0.01, case
            elif case in AMPLIFIED:
                assert (diff > 1).double().mean() < 0.01, case
                assert diff.mean() < 0.5, case
            else:
                assert diff.max() <= 1 / 255 + 1e-6 if a.is_floating_point() else diff.max() <= 1
                assert diff.mean() < 0.05, case


def main(args: list[str]) -> None:
    """``--print``: the fingerprints as JSON; ``--save PATH``: the SIMD-sensitive cases'
    pixels; ``--new``: add the cases that have no hashes, keeping the rest; no argument:
    rewrite the golden file. Always at the pinned SIMD level."""
    if any(os.environ.get(k) != v for k, v in PINNED_SIMD.items()):
        os.execve(sys.executable, [sys.executable, "-m", "tests.test_golden_ops", *args],
                  {**os.environ, **PINNED_SIMD})  # fmt: skip
    if args[:1] == ["--save"]:
        torch.save({case: _outputs(CASES[case]) for case in SIMD_SENSITIVE}, args[1])
        return
    if args[:1] == ["--print"]:
        print(json.dumps({case: fingerprint(r) for case, r in sorted(CASES.items())}))
        return
    kept = json.loads(GOLDEN.read_text()) if args[:1] == ["--new"] else {}
    hashes = {case: kept.get(case) or fingerprint(r) for case, r in sorted(CASES.items())}
    GOLDEN.write_text(json.dumps(hashes, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
