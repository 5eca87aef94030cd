"""GET/POST /v1/recipes/{ref}/preview: a PNG grid of n augmentations of one image.

GET uses the bundled sample photo, so a recipe can be reviewed from a browser; POST
takes one uploaded image (a multipart file part, or a raw image/* body). The seed
defaults to 0, so a preview URL always shows the same grid.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

import torch
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
from augsvc.api.grid import tile
from augsvc.api.limits import read_body
from augsvc.api.media import MULTIPART, base_type, require_content_type
from augsvc.api.openapi import LOOKUP, READ, RefPath, images_body, problems
from augsvc.api.uploads import parse_multipart
from augsvc.codec import decode_image, encode_png, probe_image, sample_photo_bytes
from augsvc.config import Settings
from augsvc.engine import Plan, augment
from augsvc.engine.rng import MAX_SEED
from augsvc.errors import (
    BadRequest,
    ImageTooLarge,
    Overloaded,
    PayloadTooLarge,
    UndecodableImage,
    UnsupportedMediaType,
    ValidationFailed,
)

router = APIRouter(prefix="/v1/recipes", tags=["preview"])

PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "a grid of n augmentations"}
}

Seed = Annotated[int, Query(ge=0, le=MAX_SEED)]
Count = Annotated[int, Query(ge=1, le=256, description="images in the grid, 1..preview_max")]


@lru_cache(maxsize=1)
def sample_photo() -> torch.Tensor:
    return decode_image(sample_photo_bytes(), max_pixels=10**8, name="sample.jpg")


def _check_count(n: int, settings: Settings) -> None:
    if n > settings.preview_max:
        raise ValidationFailed(f"n={n} is more than preview_max ({settings.preview_max})")


def render(plan: Plan, image: torch.Tensor, seed: int, n: int, device: torch.device,
           max_output_pixels: int) -> bytes:  # fmt: skip
    """n samples of one image (keys 0..n-1) tiled as PNG; runs on an engine thread while
    the caller holds its cost (:func:`preview_cost`) of the pixel budget."""
    batch = image.unsqueeze(0).expand(n, -1, -1, -1).contiguous()
    result = augment(plan, batch, seed=seed, device=device, max_output_pixels=max_output_pixels)
    images = (
        list(result.images) if isinstance(result.images, list) else list(result.images.unbind(0))
    )
    return encode_png(tile(images), compress_level=6)


def preview_cost(width: int, height: int, n: int, *, upload: bool) -> tuple[int, str]:
    """The decoded pixels a preview holds (n copies, plus the decoded upload) and how
    errors name it: a small image asked for many times costs as much as a big batch."""
    copies = n + 1 if upload else n
    return copies * width * height, f"the preview (n={n} of a {width}x{height} image)"


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
        photo = sample_photo()
        with budget.hold(*preview_cost(photo.shape[2], photo.shape[1], n, upload=False)):
            return render(resolved.plan, photo, seed, n, device, settings.max_output_pixels)

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
async def preview_upload(
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
        header = probe_image(body, max_pixels=settings.max_image_pixels, name=name)
        with budget.hold(*preview_cost(header.width, header.height, n, upload=True)):
            image = header.decode()
            return render(resolved.plan, image, seed, n, device, settings.max_output_pixels)

    return _png(await executor.run(job), seed, resolved.digest)
