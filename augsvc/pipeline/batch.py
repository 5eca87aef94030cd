"""The one batch pipeline: headers -> cost -> admission -> planned decode -> engine ->
targets -> encoder.

``/v1/augment``, both previews, dataset streams and ``augsvc augment`` choose their
inputs (:class:`EncodedBatch` or :class:`DecodedBatch`) and an encoder
(:mod:`augsvc.pipeline.encoders`) and call :func:`run_batch`; every check that applies
to a batch is written once, here. Nothing is decoded before the job's whole cost
(inputs, masks, the engine's working copies, outputs and the encoding) is known from
headers and the plan and admitted against the memory budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from augsvc.codec import ImageHeader, probe_image
from augsvc.codec.targets import MaskHeader, check_mask_sizes, parse_targets, probe_mask
from augsvc.engine import Plan, augment, cpu_workers, sample_plan
from augsvc.errors import FieldError, PayloadTooLarge, ValidationFailed
from augsvc.pipeline.budget import MemoryBudget
from augsvc.pipeline.cost import SampleShape, estimate
from augsvc.pipeline.decode import plan_decode
from augsvc.pipeline.encoders import Encoder, Rendered
from augsvc.targets.move import move_batch
from augsvc.targets.types import ImageTargets

#: Bytes per pixel a dataset's masks are counted at before they are read (int32 labels).
DATASET_MASK_ITEMSIZE = 4


class EncodedFile(Protocol):
    """An encoded file: its bytes and how errors name it (a multipart part, a dataset
    sample's path). A ``bytearray`` is handed over (emptied once read, so an upload is
    held once); ``bytes`` are shared (a preview reads one upload n times)."""

    data: bytearray | bytes

    @property
    def label(self) -> str: ...


@dataclass
class File:
    """An :class:`EncodedFile` made from bytes in hand."""

    data: bytearray | bytes
    label: str


def _take(file: EncodedFile) -> bytes:
    """The file's bytes; a ``bytearray`` is emptied (its bytes move, not copied twice)."""
    data = bytes(file.data)  # the same object when it is already bytes
    if isinstance(file.data, bytearray):
        file.data.clear()
    return data


@dataclass(frozen=True)
class Limits:
    max_images: int
    max_image_pixels: int
    max_output_pixels: int


@dataclass(frozen=True)
class BatchJob:
    """One batch's work, resolved before it runs: what to run, on what keys, the
    budget it is admitted against, how errors name it and how its output is encoded."""

    plan: Plan
    seed: int
    keys: np.ndarray
    device: torch.device
    limits: Limits
    budget: MemoryBudget
    encoder: Encoder
    what: str  # names the work in errors: "the request's 3 images"
    lower: str  # what the client can lower when it is too large
    offset: int = 0
    wait_s: float = 0.0  # how long admission waits for room before 503
    device_decode: bool = False  # plain JPEGs decoded on a CUDA device


@dataclass
class EncodedBatch:
    """Encoded images to decode, with the request's targets: a ``targets`` JSON document
    and one mask file per image, or a dataset's reader of its samples' targets."""

    files: Sequence[EncodedFile]
    targets_json: bytes | None = None
    masks: Sequence[EncodedFile] = ()
    #: A dataset's targets for the decoded sizes (masks are read at those sizes).
    read_targets: Callable[[list[tuple[int, int]]], list[ImageTargets] | None] | None = None
    headers: list[ImageHeader] = field(default_factory=list)
    mask_headers: list[MaskHeader] = field(default_factory=list)


@dataclass
class DecodedBatch:
    """A uint8 (N, C, H, W) batch already in memory (a safetensors body) and its targets."""

    images: torch.Tensor
    targets: list[ImageTargets | None] | None = None


def run_batch(job: BatchJob, batch: EncodedBatch | DecodedBatch) -> bytes:
    """The encoded output of ``job`` over ``batch``: refused with a typed error before
    any pixel is decoded if it cannot be done or would not fit the memory budget."""
    job.encoder.check(job.plan)
    if isinstance(batch, DecodedBatch):
        return _run_decoded(job, batch)
    uploaded = _encoded_bytes([*batch.files, *batch.masks])
    _probe(job, batch)
    full_hw = [h.displayed_hw for h in batch.headers]
    planned = plan_decode(job.plan, batch.headers, seed=job.seed, keys=job.keys)
    read = [h.decoded_pixels(s) for h, s in zip(batch.headers, planned.scales, strict=True)]
    channels = [h.channels for h in batch.headers]
    shapes = _shapes(job, full_hw, read, channels, _mask_sizes(batch, full_hw), decoded=True)
    with _admitted(job, shapes, uploaded):
        targets = _encoded_targets(batch, full_hw)
        return _render(job, planned.decode(job.device if job.device_decode else None), targets)


def _run_decoded(job: BatchJob, batch: DecodedBatch) -> bytes:
    n, channels, height, width = batch.images.shape
    full_hw = [(height, width)] * n
    no_masks = [(0, 0, 0)] * n
    shapes = _shapes(job, full_hw, [height * width] * n, [channels] * n, no_masks, decoded=False)
    with _admitted(job, shapes):  # the body holds the pixels already
        return _render(job, batch.images, batch.targets)


def _probe(job: BatchJob, batch: EncodedBatch) -> None:
    """Every file's header (and every mask's), read and checked; no pixel decoded. Each
    file's bytes move into its header, so the upload is held once, not twice."""
    if not batch.files:
        raise ValidationFailed(
            "no images in the multipart body: send one or more image file parts",
            errors=[FieldError(("body",), "no image parts")],
        )
    max_pixels = job.limits.max_image_pixels

    def probe(file: EncodedFile) -> ImageHeader:
        return probe_image(_take(file), max_pixels=max_pixels, name=file.label)

    batch.headers = list(cpu_workers().map(probe, batch.files))
    if batch.masks and len(batch.masks) != len(batch.files):
        raise ValidationFailed(
            f"{len(batch.masks)} 'masks' parts for {len(batch.files)} images: send one mask "
            "per image, in image order, or none",
            errors=[FieldError(("body", "masks"), "one per image")],
        )
    batch.mask_headers = [
        probe_mask(_take(m), name=m.label, index=i, max_pixels=max_pixels)
        for i, m in enumerate(batch.masks)
    ]
    if batch.mask_headers:
        check_mask_sizes(
            [m.hw for m in batch.mask_headers], [h.displayed_hw for h in batch.headers]
        )


def _mask_sizes(batch: EncodedBatch, full_hw: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Per sample (mask height, width, bytes per pixel); zeros for none."""
    if batch.mask_headers:
        return [(*m.hw, m.itemsize) for m in batch.mask_headers]
    if batch.read_targets is not None:  # a dataset's masks are read at the image's size
        return [(h, w, DATASET_MASK_ITEMSIZE) for h, w in full_hw]
    return [(0, 0, 0)] * len(full_hw)


def _shapes(
    job: BatchJob,
    full_hw: list[tuple[int, int]],
    read_pixels: list[int],
    channels: list[int],
    masks: list[tuple[int, int, int]],
    *,
    decoded: bool,
) -> list[SampleShape]:
    """Each sample's shape for the cost model, from its header and its drawn parameters
    (the engine draws the same again: a sample is a function of its key alone)."""
    out_hw = sample_plan(job.plan, job.seed, job.keys, np.array(full_hw, dtype=np.int64)).out_hw
    wanted = job.plan.recipe.output.channels
    shapes = [
        SampleShape(
            read_pixels=read,
            channels=c,
            out_hw=(int(hw[0]), int(hw[1])),
            out_channels=c if wanted == "auto" else int(wanted),
            decoded=decoded,
            mask_bytes_per_pixel=mask[2],
            mask_pixels=mask[0] * mask[1],
        )
        for read, c, hw, mask in zip(read_pixels, channels, out_hw.tolist(), masks, strict=True)
    ]
    out_pixels = sum(s.out_pixels for s in shapes)
    if out_pixels > job.limits.max_output_pixels:
        raise PayloadTooLarge(
            f"{job.what} would produce {out_pixels} output pixels; the limit is "
            f"{job.limits.max_output_pixels} (AUGSVC_MAX_OUTPUT_PIXELS): lower {job.lower}"
        )
    job.encoder.check_shapes(shapes)
    return shapes


def _encoded_bytes(files: Sequence[EncodedFile]) -> int:
    """The files' bytes, each object once (a preview's n samples share one upload)."""
    return sum(len(data) for data in {id(f.data): f.data for f in files}.values())


def _admitted(job: BatchJob, shapes: list[SampleShape], uploaded: int = 0):
    cost = estimate(
        job.plan,
        shapes,
        uploaded=uploaded,
        encoded=job.encoder.extra_bytes(job.plan, shapes),
        what=job.what,
        lower=job.lower,
    )
    return job.budget.hold(cost, wait_s=job.wait_s)


def _encoded_targets(
    batch: EncodedBatch, full_hw: list[tuple[int, int]]
) -> list[ImageTargets | None] | None:
    if batch.read_targets is not None:
        return batch.read_targets(full_hw)
    if batch.targets_json is None and not batch.mask_headers:
        return None
    n = len(full_hw)
    targets = parse_targets(batch.targets_json, n) if batch.targets_json is not None else [None] * n
    for i, header in enumerate(batch.mask_headers):
        mask = header.decode()
        if targets[i] is None:
            targets[i] = ImageTargets(mask=mask)
        else:
            targets[i].mask = mask
    return targets


def _render(
    job: BatchJob,
    images: torch.Tensor | list,
    targets: Sequence[ImageTargets | None] | None,
) -> bytes:
    result = augment(
        job.plan,
        images,
        seed=job.seed,
        keys=job.keys,
        device=job.device,
        max_output_pixels=job.limits.max_output_pixels,
    )
    del images  # the caller holds no reference: the decoded inputs go before encoding
    moved = None if targets is None else move_batch(job.plan, result, targets)
    return job.encoder.encode(Rendered(job.plan, job.seed, job.offset, result, moved))
