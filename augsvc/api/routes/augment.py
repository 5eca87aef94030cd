"""POST /v1/augment: images in, augmented batch out (by Accept: safetensors or zip)."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from augsvc.api.deps import (
    DeviceDep,
    ExecutorDep,
    MemoryBudgetDep,
    MetricsDep,
    ReadAuth,
    ResolverDep,
    SettingsDep,
)
from augsvc.api.limits import read_body
from augsvc.api.media import negotiate, require_content_type
from augsvc.api.openapi import LOOKUP, READ, OptionalRefQuery, images_body, problems
from augsvc.api.uploads import inline_recipe, parse_multipart
from augsvc.codec.media_types import MULTIPART, SAFETENSORS, ZIP
from augsvc.engine import MAX_SEED
from augsvc.errors import (
    BadRequest,
    FieldError,
    ImageTooLarge,
    InvalidRecipe,
    NotAcceptable,
    Overloaded,
    PayloadTooLarge,
    TooManyImages,
    UndecodableImage,
    UnsupportedMediaType,
    ValidationFailed,
)
from augsvc.pipeline import RESPONSE_ENCODERS, Limits, ResponseOptions
from augsvc.service.augment import AugmentJob, run_augment

router = APIRouter(prefix="/v1", tags=["augment"])

MAX_OFFSET = 2**62  # sample keys are int64; leave room for offset + N


def new_seed() -> int:
    """A random 63-bit seed (fits every client's signed 64-bit integer)."""
    return secrets.randbits(63)


def _one_recipe(got: str) -> ValidationFailed:
    return ValidationFailed(
        "give exactly one recipe: the `recipe` query parameter (a stored reference) or "
        f"a multipart part named 'recipe' (inline JSON); got {got}",
        errors=[FieldError(("query", "recipe"), "exactly one recipe source")],
    )


@router.post(
    "/augment",
    response_class=Response,
    responses={
        200: {"content": {SAFETENSORS: {}, ZIP: {}}, "description": "the augmented batch"},
        **problems(*READ, *LOOKUP, BadRequest, InvalidRecipe, NotAcceptable, PayloadTooLarge,
                   TooManyImages, ImageTooLarge, UnsupportedMediaType, UndecodableImage,
                   Overloaded),
    },
    openapi_extra=images_body(safetensors=True, raw_images=False, targets=True),
)  # fmt: skip
async def augment_images(
    request: Request,
    _: ReadAuth,
    settings: SettingsDep,
    resolver: ResolverDep,
    executor: ExecutorDep,
    device: DeviceDep,
    metrics: MetricsDep,
    budget: MemoryBudgetDep,
    recipe: OptionalRefQuery = None,
    seed: Annotated[
        int | None, Query(ge=0, le=MAX_SEED, description="0..2**64-1; random when omitted")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="sample key of image 0")] = 0,
    format: Annotated[Literal["png", "jpeg"], Query(description="zip entries")] = "png",
    return_params: Annotated[bool, Query(description="per-sample params (safetensors)")] = True,
    accept: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    # Everything that can be refused cheaply is refused before the body is read.
    response_type = negotiate(accept, [SAFETENSORS, ZIP])
    kind = require_content_type(content_type, [MULTIPART, SAFETENSORS])
    resolved = await resolver.resolve(recipe) if recipe is not None else None
    body = await read_body(request, settings.max_request_bytes)
    limits = Limits(settings.max_images, settings.max_image_pixels, settings.max_output_pixels)
    encoder = RESPONSE_ENCODERS[response_type](ResponseOptions(format, return_params))

    parts = None
    targets, masks = None, []
    if kind == MULTIPART:
        upload = parse_multipart(body, content_type or "", max_images=settings.max_images)
        parts = upload.images
        targets, masks = upload.targets, upload.masks
        if upload.recipe is not None and resolved is None:
            resolved = inline_recipe(upload.recipe, resolver, settings.max_recipe_bytes)
        elif upload.recipe is not None:
            raise _one_recipe("both")
    if resolved is None:
        raise _one_recipe("neither")
    encoder.check(resolved.plan)

    chosen_seed = new_seed() if seed is None else seed
    job = AugmentJob(
        plan=resolved.plan,
        seed=chosen_seed,
        offset=offset,
        device=device,
        limits=limits,
        budget=budget,
        encoder=encoder,
        parts=parts,
        tensor_body=body if kind == SAFETENSORS else None,
        device_decode=settings.device_decode,
        targets=targets,
        masks=masks,
    )
    del body  # the job holds what it needs; let a multipart body's bytes go
    output = await executor.run(lambda: run_augment(job))
    metrics.images.inc(output.count)
    metrics.batch_size.observe(output.count)
    headers = {
        "X-Augsvc-Seed": str(chosen_seed),
        "X-Augsvc-Offset": str(offset),
        "X-Augsvc-Recipe-Digest": resolved.digest,
        "X-Augsvc-Count": str(output.count),
        "Vary": "Accept",
    }
    if resolved.name is not None:
        headers["X-Augsvc-Recipe"] = f"{resolved.name}@{resolved.version}"
    if response_type == ZIP:
        headers["Content-Disposition"] = 'attachment; filename="augmented.zip"'
    return Response(output.body, media_type=response_type, headers=headers)
