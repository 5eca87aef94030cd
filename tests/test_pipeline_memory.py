"""The memory model against measured memory: for generated jobs (recipes of every kind of
op, output sizes up to what the cap admits, previews up to n=64, masks, every encoder),
the peak RSS a job really reaches stays within the estimate its admission used.

Tolerance: the estimate plus ``SLACK`` for what no job controls (allocator arenas and
page granularity, the interpreter's own small objects). A job the cap refuses must have
been refused from its estimate, before it allocated anything worth measuring.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
SLACK = 24 * 2**20
MAX_JOB_BYTES = 768 * 2**20
#: What a refused job may still grow by: its headers and the probe's own bookkeeping.
REFUSED_GROWTH = 16 * 2**20

OPS = [
    {"op": "rotate", "degrees": 30},
    {"op": "random_resized_crop", "size": 64},
    {"op": "hflip"},
    {"op": "perspective", "p": 1.0},
    {"op": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
    {"op": "grayscale", "p": 1.0},
    {"op": "gaussian_blur", "kernel_size": 9, "p": 1.0},
    {"op": "hue", "factor": 0.2},
    {"op": "equalize", "p": 1.0},
    {"op": "sharpness", "factor": 1.8},
    {"op": "posterize", "bits": 3},
    {"op": "random_erasing", "p": 1.0},
    {"op": "rand_augment"},
    {"op": "augmix"},
    {"op": "one_of", "ops": [{"op": "hue", "factor": 0.3}, {"op": "equalize"}, {"op": "invert"}]},
]


WARM_UP = {"images": [["JPEG", 40, 30, "RGB"], ["PNG", 20, 20, "RGBA"]], "masks": True,
           "deep_masks": True, "n": 2, "seed": 0, "max_job_bytes": MAX_JOB_BYTES}  # fmt: skip


@pytest.fixture(scope="module")
def probe() -> Iterator[subprocess.Popen[str]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.memory_probe"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    # First calls allocate once per process (lazy imports, kernels' caches, thread
    # pools): a job is measured only once every op and encoder has run before.
    for op in OPS:
        for encoder in ("safetensors", "zip", "grid", "frame"):
            for output in ({"channels": 1}, {"channels": 3, "dtype": "float32"}, {}):
                recipe = {"ops": [op], "output": {"size": [24, 24], **output}}
                if encoder == "zip" and output.get("dtype") == "float32":
                    continue
                measure(process, {**WARM_UP, "recipe": recipe, "encoder": encoder})
    yield process
    assert process.stdin is not None
    process.stdin.close()
    process.wait(30)


def measure(probe: subprocess.Popen[str], spec: dict) -> dict:
    assert probe.stdin is not None and probe.stdout is not None
    probe.stdin.write(json.dumps(spec) + "\n")
    probe.stdin.flush()
    line = probe.stdout.readline()
    assert line, "the probe process died"
    return json.loads(line)


image_spec = st.tuples(
    st.sampled_from(["PNG", "JPEG"]),
    st.integers(8, 700),
    st.integers(8, 700),
    st.sampled_from(["RGB", "L", "RGBA"]),
).map(lambda t: (t[0], t[1], t[2], "RGB" if t[0] == "JPEG" and t[3] == "RGBA" else t[3]))


@st.composite
def jobs(draw) -> dict:
    encoder = draw(st.sampled_from(["safetensors", "zip", "grid", "frame"]))
    ops = draw(st.lists(st.sampled_from(OPS), min_size=0, max_size=3))
    side = draw(st.integers(16, 3000))
    size = [side, draw(st.integers(16, 3000))]
    dtype = "uint8" if encoder == "zip" else draw(st.sampled_from(["uint8", "float32"]))
    channels = draw(st.sampled_from(["auto", 3, 1]))
    if encoder in ("safetensors", "frame") and channels == "auto":
        channels = 3  # one tensor holds one channel count
    recipe = {"ops": ops, "output": {"size": size, "dtype": dtype, "channels": channels}}
    n = draw(st.integers(1, 64)) if encoder == "grid" else 1
    return {
        "recipe": recipe,
        "images": draw(st.lists(image_spec, min_size=1, max_size=8)),
        "masks": encoder in ("safetensors", "zip") and draw(st.booleans()),
        "deep_masks": draw(st.booleans()),
        "encoder": encoder,
        "n": n,
        "seed": draw(st.integers(0, 2**32)),
        "max_job_bytes": MAX_JOB_BYTES,
    }


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(  # a first call's one-time allocations were once counted as this job's
    spec={"recipe": {"ops": [{"op": "gaussian_blur", "kernel_size": 9, "p": 1.0},
                             {"op": "rotate", "degrees": 30}, {"op": "perspective", "p": 1.0}],
                     "output": {"size": [16, 38], "dtype": "uint8", "channels": 1}},
          "images": [("JPEG", 606, 197, "RGB")], "masks": False, "deep_masks": True,
          "encoder": "frame", "n": 1, "seed": 0, "max_job_bytes": MAX_JOB_BYTES}
)  # fmt: skip
@given(spec=jobs())
def test_a_jobs_measured_peak_stays_within_its_admitted_estimate(probe, spec):
    got = measure(probe, spec)
    assert got["estimate"] is not None, got  # every job is estimated before it decodes
    if got["outcome"] == "payload-too-large":
        assert got["estimate"] > MAX_JOB_BYTES, got
        assert got["peak"] < REFUSED_GROWTH, got
        return
    assert got["outcome"] == "ok", got
    assert got["peak"] <= got["estimate"] + SLACK, (got, spec)


def test_the_largest_outputs_the_cap_admits_stay_within_their_estimate(probe):
    """At the edge: one image asked for at the largest square output the cap admits, with
    the op that holds the most copies, then one pixel-row more is refused."""
    base = {"images": [["PNG", 40, 30, "RGB"]], "masks": False, "deep_masks": False,
            "encoder": "safetensors", "n": 1, "max_job_bytes": MAX_JOB_BYTES}  # fmt: skip
    low, high = 64, 8192
    while high - low > 16:
        side = (low + high) // 2
        recipe = {"ops": [{"op": "hue", "factor": 0.2}], "output": {"size": [side, side]}}
        got = measure(probe, {**base, "recipe": recipe, "seed": side})
        if got["outcome"] == "ok":
            assert got["peak"] <= got["estimate"] + SLACK, got
            low = side
        else:
            assert got["outcome"] == "payload-too-large", got
            assert got["peak"] < REFUSED_GROWTH, got
            high = side
    assert 1000 < low < 4096, low  # the cap admits a few megapixels of hue, not gigapixels
