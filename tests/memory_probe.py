"""A process that runs batch jobs one at a time and reports each job's peak memory beside
the estimate its admission used (``python -m tests.memory_probe``).

Each line on stdin is one job (JSON: recipe, images, masks, encoder, n, limits); each
line on stdout is ``{"estimate": bytes, "peak": bytes, "outcome": ...}``. The peak is
VmHWM from ``/proc/self/status`` after ``clear_refs`` reset it, over VmRSS just before
the job, with freed heap given back first (``malloc_trim``), so it is the job's own
growth. A separate process, because a test runner's own allocations would blur it.
"""

from __future__ import annotations

import ctypes
import json
import sys
from pathlib import Path

import numpy as np
import torch

from augsvc.engine import compile_plan
from augsvc.errors import AugsvcError
from augsvc.pipeline import (
    BatchJob,
    EncodedBatch,
    File,
    FrameEncoder,
    GridEncoder,
    JobCost,
    Limits,
    MemoryBudget,
    SafetensorsEncoder,
    ZipEncoder,
    run_batch,
)
from augsvc.recipes import parse_recipe
from tests import imagegen

_libc = ctypes.CDLL("libc.so.6")


def status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak() -> int:
    """Give freed heap back, reset the peak, and return the RSS the job starts from."""
    _libc.malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    return status("VmRSS")


class RecordingBudget(MemoryBudget):
    """The real budget, remembering the cost it was asked to admit."""

    cost: JobCost | None = None

    def check(self, cost: JobCost) -> None:
        self.cost = cost
        super().check(cost)


def mask_png(width: int, height: int, deep: bool, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    if deep:
        values = rng.integers(0, 60000, (height, width), dtype=np.uint16)
        return imagegen.encode(imagegen.Image.fromarray(values), "PNG")  # mode I;16
    values = rng.integers(0, 20, (height, width), dtype=np.uint8)
    return imagegen.encode(imagegen.Image.fromarray(values, "L"), "PNG")


def encoder_for(name: str):
    if name == "zip":
        return ZipEncoder("png")
    if name == "grid":
        return GridEncoder()
    if name == "frame":
        return FrameEncoder(lambda _rendered, images: {"images": images})
    return SafetensorsEncoder(True)


def run(spec: dict) -> dict:
    plan = compile_plan(parse_recipe(spec["recipe"]))
    images = [
        imagegen.image_bytes(fmt, w, h, mode, seed=i)
        for i, (fmt, w, h, mode) in enumerate(spec["images"])
    ]
    if spec["encoder"] == "grid":  # a preview: one image, n samples
        images = images[:1] * spec["n"]
    masks = [mask_png(w, h, spec["deep_masks"], i) for i, (_, w, h, _) in enumerate(spec["images"])]
    budget = RecordingBudget(spec["max_job_bytes"], spec["max_job_bytes"])
    job = BatchJob(
        plan=plan,
        seed=spec["seed"],
        keys=np.arange(len(images), dtype=np.int64),
        device=torch.device("cpu"),
        limits=Limits(len(images), 10**9, 10**10),
        budget=budget,
        encoder=encoder_for(spec["encoder"]),
        what="the job",
        lower="the output size",
    )
    batch = EncodedBatch(
        [File(data, f"{i}") for i, data in enumerate(images)],
        masks=[File(m, f"m{i}") for i, m in enumerate(masks)] if spec["masks"] else (),
    )
    del images, masks
    start = reset_peak()
    try:
        body = run_batch(job, batch)
        outcome, size = "ok", len(body)
        del body
    except AugsvcError as err:
        outcome, size = err.code, 0
    peak = status("VmHWM") - start
    cost = budget.cost
    estimate = cost.total if cost is not None else None
    parts = None if cost is None else [cost.inputs, cost.working, cost.outputs, cost.encoded]
    return {"estimate": estimate, "peak": peak, "outcome": outcome, "size": size, "parts": parts}


def main() -> None:
    torch.manual_seed(0)
    warm = {"recipe": {"ops": [{"op": "rotate", "degrees": 5}], "output": {"size": [32, 32]}},
            "images": [["PNG", 40, 30, "RGB"]], "masks": True, "deep_masks": False,
            "encoder": "zip", "n": 1, "seed": 0, "max_job_bytes": 2**30}  # fmt: skip
    run(warm)  # first-call allocations (thread pools, kernels) are not a job's
    for line in sys.stdin:
        print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
