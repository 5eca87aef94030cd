"""One augment request's heavy work, as a plain function run on an engine thread:
decode the uploaded images, run the plan, encode the response body.

Nothing here is async or knows about HTTP beyond the media type it must produce; every
failure is a typed error from augsvc.errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch

from augsvc.codec import (
    ImageHeader,
    encode_jpeg,
    encode_png,
    images_to_safetensors,
    make_zip,
    probe_image,
    read_image_batch,
)
from augsvc.codec.media_types import SAFETENSORS, ZIP
from augsvc.codec.targets import targets_from_tensors, targets_tensors
from augsvc.decode_plan import plan_decode
from augsvc.engine import AugmentResult, Plan, augment, cpu_workers
from augsvc.errors import FieldError, ValidationFailed
from augsvc.maths.transfer import to_host
from augsvc.pixel_budget import PixelBudget
from augsvc.service import targets as target_io
from augsvc.targets.move import move_batch

ImageFormat = Literal["png", "jpeg"]


class EncodedImage(Protocol):
    """An uploaded file: its bytes (handed over, so emptied once read) and how errors
    name it (a multipart part)."""

    data: bytearray

    @property
    def label(self) -> str: ...


@dataclass(frozen=True)
class Limits:
    max_images: int
    max_image_pixels: int
    max_output_pixels: int


@dataclass(frozen=True)
class AugmentJob:
    """Everything one request needs, resolved on the event loop before the job runs."""

    plan: Plan
    seed: int
    offset: int
    device: torch.device
    limits: Limits
    budget: PixelBudget  # decoded pixels, held while the job decodes and augments
    response_type: str  # SAFETENSORS or ZIP
    image_format: ImageFormat = "png"
    return_params: bool = True
    parts: Sequence[EncodedImage] | None = None  # multipart uploads, in order
    tensor_body: bytes | None = None  # an application/x-safetensors body
    device_decode: bool = False  # plain JPEGs decoded on a CUDA device
    targets: bytes | None = None  # the multipart 'targets' JSON part
    masks: Sequence[EncodedImage] = ()  # the multipart 'masks' files, one per image


@dataclass(frozen=True)
class AugmentOutput:
    body: bytes
    count: int


def probe_parts(parts: Sequence[EncodedImage], max_pixels: int) -> list[ImageHeader]:
    """Every part's header, read and checked; no pixel decoded. Each part's bytes move
    into its header (the part is emptied), so the upload is held once, not twice."""
    if not parts:
        raise ValidationFailed(
            "no images in the multipart body: send one or more image file parts",
            errors=[FieldError(("body",), "no image parts")],
        )

    def probe(part: EncodedImage) -> ImageHeader:
        data = bytes(part.data)
        part.data.clear()
        return probe_image(data, max_pixels=max_pixels, name=part.label)

    return list(cpu_workers().map(probe, parts))


def run_augment(job: AugmentJob) -> AugmentOutput:
    # What decoding will cost is known from the headers alone: the request holds that
    # many pixels of the process's budget before a pixel is decoded.
    batch: torch.Tensor | None = None
    planned = None
    body_targets = None
    if job.tensor_body is not None:
        batch = read_image_batch(  # a view of the body: nothing to decode
            job.tensor_body,
            max_images=job.limits.max_images,
            max_pixels=job.limits.max_image_pixels,
        )
        n, _, height, width = batch.shape
        pixels = n * height * width
        body_targets = targets_from_tensors(job.tensor_body, n, (height, width))
    else:
        headers = probe_parts(job.parts or [], job.limits.max_image_pixels)
        # Each JPEG decodes at the coarsest scale its sample's warp can use, and the
        # budget counts what is really decoded.
        keys = np.arange(job.offset, job.offset + len(headers), dtype=np.int64)
        planned = plan_decode(job.plan, headers, seed=job.seed, keys=keys)
        n, pixels = len(headers), planned.pixels
    sizes = [h.displayed_hw for h in headers] if planned is not None else []
    if job.masks:
        pixels += sum(h * w for h, w in sizes)
    with job.budget.hold(pixels, f"the request's {n} images"):
        targets = body_targets or target_io.read_targets(
            job.targets, job.masks, sizes, max_pixels=job.limits.max_image_pixels
        )
        result = augment(
            job.plan,
            batch if planned is None else planned.decode(job.device if job.device_decode else None),
            seed=job.seed,
            offset=job.offset,
            device=job.device,
            max_output_pixels=job.limits.max_output_pixels,
        )  # the decoded inputs are gone when it returns; outputs have their own limit
        moved = None if targets is None else move_batch(job.plan, result, targets)
    count = len(result.keys)
    if job.response_type == ZIP:
        extra = [] if moved is None else target_io.zip_entries(moved)
        return AugmentOutput(encode_zip(result, job.image_format, extra), count)
    assert job.response_type == SAFETENSORS
    extra_tensors = {} if moved is None else targets_tensors(moved)
    return AugmentOutput(encode_safetensors(result, job, extra_tensors), count)


def one_tensor_problem(images: list[torch.Tensor]) -> ValidationFailed:
    """Why samples of different shapes cannot be one safetensors tensor, and what to set."""
    reasons, fixes, errors = [], [], []
    channels = sorted({img.shape[0] for img in images})
    if len(channels) > 1:
        reasons.append(f"channel counts ({', '.join(map(str, channels))})")
        fixes.append("set output.channels: 3 (or 1 or 4)")
        errors.append(FieldError(("recipe", "output", "channels"), "needed for one channel count"))
    sizes = sorted({tuple(img.shape[1:]) for img in images})
    if len(sizes) > 1:
        reasons.append(f"sizes ({', '.join(f'{h}x{w}' for h, w in sizes[:4])}...)")
        fixes.append("add output.size or a crop/resize to the recipe")
        errors.append(FieldError(("recipe", "output", "size"), "needed for one output size"))
    return ValidationFailed(
        f"the samples end with different {' and '.join(reasons)}, which one safetensors "
        f"tensor cannot hold: {', and '.join(fixes)}, or ask for Accept: application/zip",
        errors=errors,
    )


def encode_safetensors(
    result: AugmentResult, job: AugmentJob, extra: dict[str, torch.Tensor] | None = None
) -> bytes:
    if not isinstance(result.images, torch.Tensor):
        raise one_tensor_problem(result.images)
    tensors: dict[str, torch.Tensor] = {
        "images": result.images,
        "keys": torch.from_numpy(np.ascontiguousarray(result.keys, dtype=np.int64)),
    }
    if job.return_params:
        for name, values in sorted(result.params.items()):
            array = values.astype(np.uint8) if values.dtype == np.bool_ else values
            tensors[f"params.{name}"] = torch.from_numpy(np.ascontiguousarray(array))
    tensors.update(extra or {})
    metadata = {"seed": str(job.seed), "offset": str(job.offset), "digest": job.plan.digest}
    return images_to_safetensors(tensors, metadata)


def encode_zip(
    result: AugmentResult, image_format: ImageFormat, extra: list[tuple[str, bytes]] | None = None
) -> bytes:
    images = to_host(result.images)  # one device-to-host copy for the batch
    if images and images[0].dtype != torch.uint8:
        raise ValidationFailed(
            "this recipe produces float32 images, which PNG/JPEG cannot hold: "
            "ask for Accept: application/x-safetensors",
            errors=[FieldError(("recipe", "output", "dtype"), "float32 output")],
        )
    encode = encode_png if image_format == "png" else encode_jpeg
    suffix = "png" if image_format == "png" else "jpg"
    files = [(f"{i:06d}.{suffix}", encode(img)) for i, img in enumerate(images)]
    return make_zip(files + (extra or []))
