"""Recipes over REST: named, versioned, content-addressed.

The ETag of a version is its digest, so ``If-Match: "<digest>"`` turns a read-modify-
write into a safe concurrent update (412 when someone else wrote in between), and
``If-None-Match`` lets a client revalidate a cached copy for a 304.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Request
from starlette.responses import JSONResponse, Response

from augsvc.api.deps import AdminAuth, ReadAuth, SettingsDep, StoreDep
from augsvc.api.limits import read_body
from augsvc.api.media import document_syntaxes
from augsvc.api.openapi import (
    LOOKUP,
    NOT_MODIFIED,
    READ,
    RECIPE_BODY,
    UNCHANGED,
    WRITE,
    NamePath,
    RefPath,
    problems,
)
from augsvc.api.timestamps import iso_timestamp
from augsvc.codec.media_types import JSON, YAML_TYPES
from augsvc.errors import (
    InvalidRecipe,
    InvalidReference,
    PayloadTooLarge,
    PreconditionFailed,
    StoreUnavailable,
    UnsupportedMediaType,
)
from augsvc.recipes import canonical_document, check_name, digest, parse_recipe, parse_ref
from augsvc.recipes.documents import read_document
from augsvc.service.resolver import lookup
from augsvc.store import StoredRecipe

router = APIRouter(prefix="/v1/recipes", tags=["recipes"])


def record(stored: StoredRecipe) -> dict[str, Any]:
    """The JSON shape of one stored version."""
    return {
        "name": stored.name,
        "version": stored.version,
        "ref": f"{stored.name}@{stored.version}",
        "digest": stored.digest,
        "recipe": stored.document,
        "created_at": iso_timestamp(stored.created_at),
    }


def etag(stored: StoredRecipe) -> str:
    return f'"{stored.digest}"'


def version_path(stored: StoredRecipe) -> str:
    return f"/v1/recipes/{stored.name}/versions/{stored.version}"


def _entity_tags(header: str) -> list[str]:
    """``W/"a", "b"`` -> ``["a", "b"]``; ``*`` stays ``*`` (comparison is on the digest)."""
    tags = []
    for raw in header.split(","):
        tag = raw.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tags.append(tag.strip('"'))
    return [t for t in tags if t]


def _stored_response(
    stored: StoredRecipe, status: int = 200, if_none_match: str | None = None
) -> Response:
    headers = {"ETag": etag(stored), "Content-Location": version_path(stored)}
    if if_none_match is not None:
        tags = _entity_tags(if_none_match)
        if "*" in tags or stored.digest in tags:
            return Response(status_code=304, headers=headers)
    return JSONResponse(record(stored), status_code=status, headers=headers)


def _read_recipe(body: bytearray, syntaxes: list[Literal["json", "yaml"]]) -> Any:
    """The document in the first syntax that reads it; else the first syntax's error
    (a sniffed ``{...}`` that is neither JSON nor YAML is reported as JSON)."""
    try:
        return read_document(body, syntaxes[0])
    except InvalidRecipe:
        for fallback in syntaxes[1:]:
            try:
                return read_document(body, fallback)
            except InvalidRecipe:
                continue
        raise


@router.put(
    "/{name}",
    status_code=201,
    responses={**UNCHANGED,
               **problems(*WRITE, InvalidReference, InvalidRecipe, PreconditionFailed,
                          PayloadTooLarge, UnsupportedMediaType)},
    openapi_extra=RECIPE_BODY,
)  # fmt: skip
async def put_recipe(
    name: NamePath,
    request: Request,
    _: AdminAuth,
    store: StoreDep,
    settings: SettingsDep,
    content_type: Annotated[str | None, Header()] = None,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Create the next version of ``name``; the same content as the latest answers 200."""
    check_name(name)
    body = await read_body(request, settings.max_recipe_bytes, "recipe document")
    recipe = parse_recipe(
        _read_recipe(body, document_syntaxes(content_type, body, JSON, YAML_TYPES))
    )
    match = None
    if if_match is not None:
        tags = _entity_tags(if_match)
        match = "*" if "*" in tags else (tags[0] if tags else "")
    stored, created = await store.put(
        name, canonical_document(recipe), digest(recipe), if_match=match
    )
    response = _stored_response(stored, status=201 if created else 200)
    response.headers["Location"] = version_path(stored)
    return response


@router.get("", responses=problems(*READ, StoreUnavailable))
async def list_recipes(_: ReadAuth, store: StoreDep) -> dict[str, Any]:
    """The latest version of every recipe, by name."""
    return {"recipes": [record(s) for s in await store.list()]}


@router.get("/{name}/versions", responses=problems(*READ, *LOOKUP))
async def list_versions(name: NamePath, _: ReadAuth, store: StoreDep) -> dict[str, Any]:
    check_name(name)
    return {"name": name, "versions": [record(s) for s in await store.versions(name)]}


@router.get("/{name}/versions/{version}", responses={**NOT_MODIFIED, **problems(*READ, *LOOKUP)})
async def get_version(
    name: NamePath,
    version: Annotated[int, Path(ge=1, le=999_999_999)],
    _: ReadAuth,
    store: StoreDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    check_name(name)
    return _stored_response(await store.get(name, version), if_none_match=if_none_match)


@router.get("/{ref}", responses={**NOT_MODIFIED, **problems(*READ, *LOOKUP)})
async def get_recipe(
    ref: RefPath,
    _: ReadAuth,
    store: StoreDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    stored = await lookup(store, parse_ref(ref))
    return _stored_response(stored, if_none_match=if_none_match)


@router.delete("/{name}", status_code=204, responses=problems(*WRITE, *LOOKUP))
async def delete_recipe(name: NamePath, _: AdminAuth, store: StoreDep) -> Response:
    """Remove every version; their numbers are never reused (see augsvc/store/base.py)."""
    check_name(name)
    await store.delete(name)
    return Response(status_code=204)
