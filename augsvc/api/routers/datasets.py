"""Datasets: register server-side image sources and stream augmented batches from them."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from augsvc.api.deps import (
    AdminAuth,
    DeviceDep,
    MetricsDep,
    PixelBudgetDep,
    ReadAuth,
    ResolverDep,
    SettingsDep,
)
from augsvc.api.limits import read_body
from augsvc.api.media import JSON, require_content_type
from augsvc.api.openapi import (
    DATASET_BODY,
    LOOKUP,
    READ,
    UNCHANGED,
    WRITE,
    NamePath,
    RefQuery,
    problems,
)
from augsvc.api.streams import stream_frames
from augsvc.datasets import DatasetSpec, Source, open_source, parse_spec
from augsvc.datasets.order import MAX_EPOCH
from augsvc.documents import parse_document
from augsvc.engine.rng import MAX_SEED
from augsvc.errors import (
    BadRequest,
    DatasetNotFound,
    InvalidReference,
    Overloaded,
    PathNotAllowed,
    PayloadTooLarge,
    StoreUnavailable,
    UndecodableImage,
    UnsupportedMediaType,
)
from augsvc.store import DatasetStore, StoredDataset
from augsvc.streaming import StreamRequest

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

STREAM_MEDIA_TYPE = "application/x-augsvc-stream"
SOURCE_CACHE_SIZE = 32
#: Largest registration body: ``{"kind", "path"}`` with a path of at most 4096 characters.
MAX_SPEC_BYTES = 64 * 1024


class SourceCache:
    """Indexed sources by (name, registration time): a source is listed once per
    registration per process; re-registering (PUT) re-indexes on every replica."""

    def __init__(self, size: int = SOURCE_CACHE_SIZE) -> None:
        self._items: OrderedDict[tuple[str, float], Source] = OrderedDict()
        self._size = size

    async def get(self, stored: StoredDataset, settings: Any) -> Source:
        key = (stored.name, stored.created_at)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        source = await open_spec(stored.spec, settings)
        self._items[key] = source
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return source


async def open_spec(spec: dict[str, Any], settings: Any) -> Source:
    """Index a source off the event loop (listing a big tree takes a while)."""
    parsed = DatasetSpec.model_validate(spec)
    return await asyncio.to_thread(open_source, parsed, settings.data_root_paths)


def _store(request: Request) -> DatasetStore:
    return request.app.state.datasets


def _sources(request: Request) -> SourceCache:
    return request.app.state.sources


def _record(stored: StoredDataset, source: Source | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"name": stored.name, **stored.spec, "created_at": stored.created_at}
    if source is not None:
        record["size"] = len(source)
        record["classes"] = source.classes
    return record


@router.put(
    "/{name}",
    status_code=201,
    responses={**UNCHANGED,
               **problems(*WRITE, BadRequest, InvalidReference, PathNotAllowed, PayloadTooLarge,
                          UnsupportedMediaType)},
    openapi_extra=DATASET_BODY,
)  # fmt: skip
async def put_dataset(
    name: NamePath,
    request: Request,
    _: AdminAuth,
    settings: SettingsDep,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    """Register (or replace) a dataset. The path is checked and indexed first."""
    # Read here, under a byte limit and the nesting limit of every user document, not by
    # FastAPI, which would buffer a body of any size and hand it to json.loads whole.
    require_content_type(content_type or JSON, [JSON])
    body = await read_body(request, MAX_SPEC_BYTES, "dataset registration")
    spec = parse_spec(parse_document(body, "json", source="the dataset registration"))
    source = await open_spec(spec.model_dump(), settings)
    stored, created = await _store(request).put(name, spec.model_dump())
    return JSONResponse(_record(stored, source), status_code=201 if created else 200)


@router.get("", responses=problems(*READ, StoreUnavailable))
async def list_datasets(request: Request, _: ReadAuth) -> dict[str, Any]:
    return {"datasets": [_record(d) for d in await _store(request).list()]}


@router.get("/{name}", responses=problems(*READ, DatasetNotFound, StoreUnavailable))
async def get_dataset(
    name: NamePath, request: Request, _: ReadAuth, settings: SettingsDep
) -> dict[str, Any]:
    stored = await _store(request).get(name)
    return _record(stored, await _sources(request).get(stored, settings))


@router.delete("/{name}", status_code=204, responses=problems(*WRITE, DatasetNotFound))
async def delete_dataset(name: NamePath, request: Request, _: AdminAuth) -> Response:
    await _store(request).delete(name)
    return Response(status_code=204)


@router.get(
    "/{name}/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {STREAM_MEDIA_TYPE: {}}, "description": "length-prefixed frames"},
        **problems(*READ, *LOOKUP, DatasetNotFound, PathNotAllowed, UndecodableImage,
                   Overloaded),
    },
)  # fmt: skip
async def stream_dataset(
    name: NamePath,
    request: Request,
    _: ReadAuth,
    settings: SettingsDep,
    resolver: ResolverDep,
    device: DeviceDep,
    metrics: MetricsDep,
    budget: PixelBudgetDep,
    recipe: RefQuery,
    seed: Annotated[int, Query(ge=0, le=MAX_SEED)],
    epoch: Annotated[int, Query(ge=0, le=MAX_EPOCH)] = 0,
    batch_size: Annotated[int, Query(ge=1, le=1024)] = 64,
    rank: Annotated[int, Query(ge=0)] = 0,
    world_size: Annotated[int, Query(ge=1, le=65536)] = 1,
    start: Annotated[int, Query(ge=0, description="global epoch position to resume at")] = 0,
    drop_last: bool = False,
) -> StreamingResponse:
    """Frames of an 8-byte little-endian length + a safetensors blob (images, indices,
    labels; metadata epoch, batch, rank, world_size, start, position, digest)."""
    resolved = await resolver.resolve(recipe)
    stored = await _store(request).get(name)
    source = await _sources(request).get(stored, settings)
    stream = StreamRequest(seed, epoch, batch_size, rank, world_size, start, drop_last)
    stream.check(resolved.plan, len(source))
    pools = request.app.state.stream_pools
    pools.claim()
    body = stream_frames(
        source,
        resolved.plan,
        stream,
        device=device,
        max_pixels=settings.max_image_pixels,
        budget=budget,
        prefetch=settings.stream_prefetch,
        pools=pools,
        metrics=metrics,
        draining=request.app.state.draining,
    )
    headers = {
        "X-Augsvc-Recipe-Digest": resolved.plan.digest,
        "X-Augsvc-Dataset-Size": str(len(source)),
        "Cache-Control": "no-store",
    }
    return StreamingResponse(body, media_type=STREAM_MEDIA_TYPE, headers=headers)
