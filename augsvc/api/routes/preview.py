"""GET/POST /v1/recipes/{ref}/preview: a PNG grid of n augmentations of one image.

GET uses the bundled sample photo, so a recipe can be reviewed from a browser; POST
takes one uploaded image (a multipart file part, or a raw image/* body). The seed
defaults to 0, so a preview URL always shows the same grid.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from augsvc.api.deps import (
    DeviceDep,
    ExecutorDep,
    PixelBudgetDep,
    ReadAuth,
    ResolverDep,
    SettingsDep,
)
from augsvc.api.limits import read_body
from augsvc.api.media import base_type, require_content_type
from augsvc.api.openapi import LOOKUP, READ, RefPath, images_body, problems
from augsvc.api.uploads import parse_multipart
from augsvc.codec.media_types import MULTIPART
from augsvc.config import Settings
from augsvc.engine import MAX_SEED
from augsvc.errors import (
    BadRequest,
    ImageTooLarge,
    Overloaded,
    PayloadTooLarge,
    UndecodableImage,
    UnsupportedMediaType,
    ValidationFailed,
)
from augsvc.service.preview import preview_photo, preview_upload

router = APIRouter(prefix="/v1/recipes", tags=["preview"])

PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "a grid of n augmentations"}
}

Seed = Annotated[int, Query(ge=0, le=MAX_SEED)]
Count = Annotated[int, Query(ge=1, le=256, description="images in the grid, 1..preview_max")]


def _check_count(n: int, settings: Settings) -> None:
    if n > settings.preview_max:
        raise ValidationFailed(f"n={n} is more than preview_max ({settings.preview_max})")


def _png(body: bytes, seed: int, digest: str) -> Response:
    headers = {"X-Augsvc-Seed": str(seed), "X-Augsvc-Recipe-Digest": digest}
    return Response(body, media_type="image/png", headers=headers)


@router.get(
    "/{ref}/preview",
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
    budget: PixelBudgetDep,
    seed: Seed = 0,
    n: Count = 16,
) -> Response:
    _check_count(n, settings)
    resolved = await resolver.resolve(ref)

    def job() -> bytes:
        return preview_photo(
            resolved.plan, seed, n, device=device, budget=budget,
            max_output_pixels=settings.max_output_pixels,
        )  # fmt: skip

    return _png(await executor.run(job), seed, resolved.digest)


@router.post(
    "/{ref}/preview",
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
    budget: PixelBudgetDep,
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
        return preview_upload(
            resolved.plan, body, name, seed, n, device=device, budget=budget,
            max_pixels=settings.max_image_pixels, max_output_pixels=settings.max_output_pixels,
        )  # fmt: skip

    return _png(await executor.run(job), seed, resolved.digest)
