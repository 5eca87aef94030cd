"""A preview: n augmentations of one image (sample keys 0..n-1) tiled into one PNG.

The image is read once and shared by the n samples; each decodes at the scale and
region its own sample reads, through the same batch pipeline as ``/v1/augment``, so a
tile is the bytes ``/v1/augment`` gives that image at that key, and its memory is
admitted before any of it is decoded.
"""

from __future__ import annotations

import numpy as np
import torch

from augsvc.codec import sample_photo_bytes
from augsvc.engine import Plan
from augsvc.pipeline import (
    BatchJob,
    EncodedBatch,
    File,
    GridEncoder,
    Limits,
    MemoryBudget,
    run_batch,
)


def render_preview(
    plan: Plan,
    data: bytes | bytearray | None,
    name: str,
    seed: int,
    n: int,
    *,
    device: torch.device,
    budget: MemoryBudget,
    limits: Limits,
) -> bytes:
    """The grid of ``data`` (None: the bundled sample photo) for keys 0..n-1."""
    if data is None:
        data, name = sample_photo_bytes(), "sample.jpg"
    job = BatchJob(
        plan=plan,
        seed=seed,
        keys=np.arange(n, dtype=np.int64),
        device=device,
        limits=limits,
        budget=budget,
        encoder=GridEncoder(),
        what=f"the preview (n={n} of {name!r})",
        lower="n (fewer tiles) or the recipe's output size",
    )
    shared = bytes(data)  # immutable, so the n samples read one copy and none empties it
    return run_batch(job, EncodedBatch([File(shared, name)] * n))
