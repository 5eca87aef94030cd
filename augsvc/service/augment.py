"""One augment request: its inputs and its encoder, handed to the batch pipeline.

Runs on an engine thread; nothing here is async or knows HTTP beyond the media type it
must produce; every failure is a typed error from augsvc.errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from augsvc.codec import read_image_batch
from augsvc.codec.targets import targets_from_tensors
from augsvc.engine import Plan
from augsvc.pipeline import (
    BatchJob,
    DecodedBatch,
    EncodedBatch,
    Limits,
    MemoryBudget,
    run_batch,
)
from augsvc.pipeline.batch import EncodedFile
from augsvc.pipeline.encoders import Encoder


@dataclass(frozen=True)
class AugmentJob:
    """Everything one request needs, resolved on the event loop before the job runs."""

    plan: Plan
    seed: int
    offset: int
    device: torch.device
    limits: Limits
    budget: MemoryBudget
    encoder: Encoder  # the response's (RESPONSE_ENCODERS), checked against the plan
    parts: Sequence[EncodedFile] | None = None  # multipart uploads, in order
    tensor_body: bytes | None = None  # an application/x-safetensors body
    device_decode: bool = False  # plain JPEGs decoded on a CUDA device
    targets: bytes | None = None  # the multipart 'targets' JSON part
    masks: Sequence[EncodedFile] = ()  # the multipart 'masks' files, one per image


@dataclass(frozen=True)
class AugmentOutput:
    body: bytes
    count: int


def run_augment(job: AugmentJob) -> AugmentOutput:
    batch: EncodedBatch | DecodedBatch
    if job.tensor_body is not None:
        images = read_image_batch(  # a view of the body: nothing to decode
            job.tensor_body,
            max_images=job.limits.max_images,
            max_pixels=job.limits.max_image_pixels,
        )
        n, _, height, width = images.shape
        batch = DecodedBatch(images, targets_from_tensors(job.tensor_body, n, (height, width)))
    else:
        n = len(job.parts or [])
        batch = EncodedBatch(job.parts or [], targets_json=job.targets, masks=job.masks)
    pipeline_job = BatchJob(
        plan=job.plan,
        seed=job.seed,
        keys=np.arange(job.offset, job.offset + n, dtype=np.int64),
        device=job.device,
        limits=job.limits,
        budget=job.budget,
        encoder=job.encoder,
        what=f"the request's {n} images",
        lower="the output size (output.size or the recipe's crop/resize) or the number of "
        "images per request",
        offset=job.offset,
        device_decode=job.device_decode,
    )
    return AugmentOutput(run_batch(pipeline_job, batch), n)
