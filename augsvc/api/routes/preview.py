"""GET/POST /v1/recipes/{ref}/preview: a PNG grid of n augmentations of one image.

GET uses the bundled sample photo, so a recipe can be reviewed from a browser; POST
takes one uploaded image (a multipart file part, or a raw image/* body). The seed
defaults to 0, so a preview URL always shows the same grid. POST /v1/preview shows a
recipe that is not stored yet (the playground's draft): a multipart ``recipe`` part,
read as an inline recipe of /v1/augment is, and at most one image part (the bundled
photo without one). The grid is the same bytes as the stored recipe's preview.

Every grid says how it is laid out (``X-Augsvc-Grid-Columns``, ``X-Augsvc-Grid-Gap``),
so a client can tell which sample key a point of the picture shows.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from augsvc.api.deps import (
    DeviceDep,
    ExecutorDep,
    MemoryBudgetDep,
    ReadAuth,
    ResolverDep,
    SettingsDep,
)
from augsvc.api.limits import read_body
from augsvc.api.media import base_type, require_content_type
from augsvc.api.openapi import LOOKUP, READ, RefPath, images_body, problems
from augsvc.api.uploads import inline_recipe, parse_multipart
from augsvc.codec.media_types import MULTIPART
from augsvc.config import Settings
from augsvc.engine import MAX_SEED
from augsvc.errors import (
    BadRequest,
    FieldError,
    ImageTooLarge,
    InvalidRecipe,
    Overloaded,
    PayloadTooLarge,
    UndecodableImage,
    UnsupportedMediaType,
    ValidationFailed,
)
from augsvc.pipeline import Limits
from augsvc.pipeline.grid import GAP, columns
from augsvc.service.preview import render_preview

router = APIRouter(prefix="/v1", tags=["preview"])

PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "a grid of n augmentations"}
}

Seed = Annotated[int, Query(ge=0, le=MAX_SEED)]
Count = Annotated[int, Query(ge=1, le=256, description="images in the grid, 1..preview_max")]


def _check_count(n: int, settings: Settings) -> None:
    if n > settings.preview_max:
        raise ValidationFailed(f"n={n} is more than preview_max ({settings.preview_max})")


def _limits(settings: Settings) -> Limits:
    return Limits(1, settings.max_image_pixels, settings.max_output_pixels)


def _png(body: bytes, seed: int, n: int, digest: str) -> Response:
    headers = {
        "X-Augsvc-Seed": str(seed),
        "X-Augsvc-Recipe-Digest": digest,
        "X-Augsvc-Grid-Columns": str(columns(n)),
        "X-Augsvc-Grid-Gap": str(GAP),
    }
    return Response(body, media_type="image/png", headers=headers)


@router.get(
    "/recipes/{ref}/preview",
    response_class=Response,
    responses={**PNG, **problems(*READ, *LOOKUP, PayloadTooLarge, Overloaded)},
)
async def preview_sample(
    ref: RefPath,
    _: ReadAuth,
    settings: SettingsDep,
    resolver: ResolverDep,
    executor: ExecutorDep,
    device: DeviceDep,
    budget: MemoryBudgetDep,
    seed: Seed = 0,
    n: Count = 16,
) -> Response:
    _check_count(n, settings)
    resolved = await resolver.resolve(ref)

    def job() -> bytes:
        return render_preview(resolved.plan, None, "", seed, n, device=device, budget=budget,
                              limits=_limits(settings))  # fmt: skip

    return _png(await executor.run(job), seed, n, resolved.digest)


@router.post(
    "/recipes/{ref}/preview",
    response_class=Response,
    responses={
        **PNG,
        **problems(*READ, *LOOKUP, BadRequest, PayloadTooLarge, ImageTooLarge,
                   UnsupportedMediaType, UndecodableImage, Overloaded),
    },
    openapi_extra=images_body(safetensors=False, raw_images=True),
)  # fmt: skip
async def preview_uploaded(
    ref: RefPath,
    request: Request,
    _: ReadAuth,
    settings: SettingsDep,
    resolver: ResolverDep,
    executor: ExecutorDep,
    device: DeviceDep,
    budget: MemoryBudgetDep,
    seed: Seed = 0,
    n: Count = 16,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    _check_count(n, settings)
    kind = base_type(content_type)
    if kind != MULTIPART and not kind.startswith("image/"):
        require_content_type(content_type, [MULTIPART, "image/*"])
    resolved = await resolver.resolve(ref)
    body = await read_body(request, settings.max_request_bytes)
    name = "body"
    if kind == MULTIPART:
        parts = parse_multipart(body, content_type or "", max_images=1).images
        if not parts:
            raise BadRequest("no image part in the multipart body")
        body, name = bytes(parts[0].data), parts[0].label

    def job() -> bytes:
        return render_preview(resolved.plan, body, name, seed, n, device=device, budget=budget,
                              limits=_limits(settings))  # fmt: skip

    return _png(await executor.run(job), seed, n, resolved.digest)


@router.post(
    "/preview",
    response_class=Response,
    responses={
        **PNG,
        **problems(*READ, BadRequest, InvalidRecipe, PayloadTooLarge, ImageTooLarge,
                   UnsupportedMediaType, UndecodableImage, Overloaded),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                MULTIPART: {
                    "schema": {
                        "type": "object",
                        "required": ["recipe"],
                        "properties": {
                            "recipe": {"type": "string", "description": "the recipe, as JSON"},
                            "image": {"type": "string", "format": "binary",
                                      "description": "optional: the bundled photo without it"},
                        },
                    }
                }
            },
        }
    },
)  # fmt: skip
async def preview_draft(
    request: Request,
    _: ReadAuth,
    settings: SettingsDep,
    resolver: ResolverDep,
    executor: ExecutorDep,
    device: DeviceDep,
    budget: MemoryBudgetDep,
    seed: Seed = 0,
    n: Count = 16,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    """The grid of an inline recipe, exactly as its stored version's preview would be."""
    _check_count(n, settings)
    require_content_type(content_type, [MULTIPART])
    body = await read_body(request, settings.max_request_bytes)
    upload = parse_multipart(body, content_type or "", max_images=1)
    if upload.recipe is None:
        raise ValidationFailed(
            "send the recipe as a multipart part named 'recipe' (JSON)",
            errors=[FieldError(("body", "recipe"), "Field required")],
        )
    resolved = inline_recipe(upload.recipe, resolver, settings.max_recipe_bytes)
    image = upload.images[0] if upload.images else None

    data, name = (None, "") if image is None else (bytes(image.data), image.label)

    def job() -> bytes:
        return render_preview(resolved.plan, data, name, seed, n, device=device, budget=budget,
                              limits=_limits(settings))  # fmt: skip

    return _png(await executor.run(job), seed, n, resolved.digest)
