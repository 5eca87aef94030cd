"""Datasets: register server-side image sources and stream augmented batches from them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from augsvc.api.deps import (
    AdminAuth,
    DatasetsDep,
    DeviceDep,
    MemoryBudgetDep,
    MetricsDep,
    ReadAuth,
    ResolverDep,
    SettingsDep,
    SourcesDep,
    StreamsDep,
)
from augsvc.api.limits import read_body
from augsvc.api.media import document_syntaxes
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
from augsvc.api.timestamps import iso_timestamp
from augsvc.codec.media_types import JSON, STREAM
from augsvc.datasets import Source, parse_spec
from augsvc.datasets.mixing import MixSpec
from augsvc.datasets.order import MAX_EPOCH
from augsvc.datasets.stream import StreamRequest
from augsvc.documents import parse_document
from augsvc.engine import MAX_SEED
from augsvc.errors import (
    AugsvcError,
    BadRequest,
    DatasetNotFound,
    InvalidReference,
    ObjectNotFound,
    ObjectStoreUnavailable,
    Overloaded,
    PathNotAllowed,
    PayloadTooLarge,
    SampleUnreadable,
    StoreUnavailable,
    UndecodableImage,
    UnsupportedMediaType,
    UrlNotAllowed,
)
from augsvc.pipeline import Limits
from augsvc.service.sources import SourceCache
from augsvc.service.stream_producer import open_stream
from augsvc.store import StoredDataset

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

#: Largest registration body: ``{"kind", "path"}`` with a path of at most 4096 characters.
MAX_SPEC_BYTES = 64 * 1024


def _record(stored: StoredDataset, source: Source) -> dict[str, Any]:
    """The JSON shape of a registration: its spec, when, and what the source holds."""
    return {
        "name": stored.name,
        **stored.spec,
        "created_at": iso_timestamp(stored.created_at),
        "size": len(source),
        "classes": source.classes,
    }


async def _listed(stored: StoredDataset, sources: SourceCache) -> dict[str, Any]:
    """A list entry: the record, or, when the source cannot be read any more (a folder
    gone, a shard rewritten, a bucket unreachable), the registration with the problem,
    so one broken dataset does not hide the others."""
    try:
        return _record(stored, await sources.get(stored))
    except AugsvcError as err:
        return {
            "name": stored.name,
            **stored.spec,
            "created_at": iso_timestamp(stored.created_at),
            "size": None,
            "classes": None,
            "error": {"code": err.code, "detail": err.detail},
        }


@router.put(
    "/{name}",
    status_code=201,
    responses={**UNCHANGED,
               **problems(*WRITE, BadRequest, InvalidReference, PathNotAllowed, PayloadTooLarge,
                          UnsupportedMediaType, UrlNotAllowed, ObjectNotFound,
                          ObjectStoreUnavailable)},
    openapi_extra=DATASET_BODY,
)  # fmt: skip
async def put_dataset(
    name: NamePath,
    request: Request,
    _: AdminAuth,
    datasets: DatasetsDep,
    sources: SourcesDep,
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    """Register (or replace) a dataset. The path is checked and indexed first."""
    # Read here, under a byte limit and the nesting limit of every user document, not by
    # FastAPI, which would buffer a body of any size and hand it to json.loads whole.
    body = await read_body(request, MAX_SPEC_BYTES, "dataset registration")
    document_syntaxes(content_type, body, JSON)  # JSON, or 415 naming the header
    spec = parse_spec(parse_document(body, "json", source="the dataset registration"))
    source = await sources.open(spec.model_dump(exclude_none=True))
    stored, created = await datasets.put(name, spec.model_dump(exclude_none=True))
    sources.remember(stored, source)  # this replica's first stream need not list it again
    return JSONResponse(_record(stored, source), status_code=201 if created else 200)


@router.get("", responses=problems(*READ, StoreUnavailable))
async def list_datasets(_: ReadAuth, datasets: DatasetsDep, sources: SourcesDep) -> dict[str, Any]:
    """Every registration by name, with its size and classes (sources this replica has
    not opened yet are opened together, not one after another)."""
    stored = await datasets.list()
    return {"datasets": list(await asyncio.gather(*(_listed(d, sources) for d in stored)))}


@router.get(
    "/{name}",
    responses=problems(*READ, DatasetNotFound, StoreUnavailable),
)  # fmt: skip
async def get_dataset(
    name: NamePath, _: ReadAuth, datasets: DatasetsDep, sources: SourcesDep
) -> dict[str, Any]:
    """The record as the list shows it: a source that can no longer be read is the
    registration with ``"size": null`` and its ``error``, not a failed request (the
    registration is there; its files are what went wrong)."""
    return await _listed(await datasets.get(name), sources)


@router.delete("/{name}", status_code=204, responses=problems(*WRITE, DatasetNotFound))
async def delete_dataset(name: NamePath, _: AdminAuth, datasets: DatasetsDep) -> Response:
    await datasets.delete(name)
    return Response(status_code=204)


@router.get(
    "/{name}/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {STREAM: {}}, "description": "length-prefixed frames"},
        **problems(*READ, *LOOKUP, DatasetNotFound, PathNotAllowed, UndecodableImage,
                   SampleUnreadable, Overloaded, UrlNotAllowed, ObjectNotFound,
                   ObjectStoreUnavailable),
    },
)  # fmt: skip
async def stream_dataset(
    name: NamePath,
    request: Request,
    _: ReadAuth,
    settings: SettingsDep,
    resolver: ResolverDep,
    datasets: DatasetsDep,
    sources: SourcesDep,
    pools: StreamsDep,
    device: DeviceDep,
    metrics: MetricsDep,
    budget: MemoryBudgetDep,
    recipe: RefQuery,
    seed: Annotated[int, Query(ge=0, le=MAX_SEED)],
    epoch: Annotated[int, Query(ge=0, le=MAX_EPOCH)] = 0,
    batch_size: Annotated[int, Query(ge=1, le=1024)] = 64,
    rank: Annotated[int, Query(ge=0)] = 0,
    world_size: Annotated[int, Query(ge=1, le=65536)] = 1,
    start: Annotated[int, Query(ge=0, description="global epoch position to resume at")] = 0,
    drop_last: bool = False,
    mixup_alpha: Annotated[
        float, Query(ge=0, le=1e6, description="MixUp Beta(a, a); 0: off")
    ] = 0.0,
    cutmix_alpha: Annotated[
        float, Query(ge=0, le=1e6, description="CutMix Beta(a, a); 0: off")
    ] = 0.0,
    cutmix_minmax: Annotated[
        list[float] | None,
        Query(
            min_length=2, max_length=2, description="CutMix box side ratios min, max (given twice)"
        ),
    ] = None,
    mix_prob: Annotated[float, Query(ge=0, le=1, description="chance a sample is mixed")] = 1.0,
    switch_prob: Annotated[
        float, Query(ge=0, le=1, description="chance of CutMix when both are on")
    ] = 0.5,
    correct_lam: bool = True,
    label_smoothing: Annotated[float, Query(ge=0, lt=1)] = 0.0,
    num_classes: Annotated[
        int | None, Query(ge=1, le=1_000_000, description="default: the dataset's classes")
    ] = None,
) -> StreamingResponse:
    """Frames of an 8-byte little-endian length + a safetensors blob (images, indices,
    labels; metadata epoch, batch, rank, world_size, start, position, digest). With
    mixing on (``mixup_alpha``, ``cutmix_alpha`` or ``cutmix_minmax``), each sample is
    mixed with a partner of the epoch and frames add ``targets`` (soft targets), ``lam``
    and ``partners`` (the partners' dataset indices)."""
    resolved = await resolver.resolve(recipe)
    stored = await datasets.get(name)
    source = await sources.get(stored)
    minmax = None if cutmix_minmax is None else (cutmix_minmax[0], cutmix_minmax[1])
    mix = MixSpec(mixup_alpha, cutmix_alpha, minmax, mix_prob, switch_prob, correct_lam,
                  label_smoothing, num_classes)  # fmt: skip
    if mix.enabled:
        mix = mix.check(source.classes, source.labelled, batch_size)
    stream = StreamRequest(seed, epoch, batch_size, rank, world_size, start, drop_last,
                           mix if mix.enabled else None)  # fmt: skip
    body = open_stream(
        source,
        resolved.plan,
        stream,
        device=device,
        limits=Limits(batch_size, settings.max_image_pixels, settings.max_output_pixels),
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
    return StreamingResponse(body, media_type=STREAM, headers=headers)
