"""The OpenAPI document tells the truth about errors.

FastAPI documents one error per route, a 422 ``HTTPValidationError`` as
``application/json``, which is not what the service sends. Routes declare the problems
they can answer with :func:`problems`, by the classes of the error tree, so the document
names each status with its stable codes; :func:`install_openapi` then files every error
response under ``application/problem+json``. Generated clients and schema-driven fuzzers
(schemathesis) see the statuses and media types the server really uses.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from pydantic import BaseModel, Field

from augsvc.codec.media_types import PROBLEM_JSON
from augsvc.datasets import DatasetSpec
from augsvc.errors import (
    AugsvcError,
    Forbidden,
    InvalidReference,
    RecipeNotFound,
    StoreUnavailable,
    Unauthorized,
    ValidationFailed,
)
from augsvc.recipes import recipe_json_schema
from augsvc.recipes.refs import NAME_PATTERN, REF_PATTERN


class ProblemFieldError(BaseModel):
    loc: list[str | int] = Field(description='path to the input, e.g. ["ops", 2, "degrees"]')
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details, with augsvc's stable ``code`` and field errors."""

    type: str = Field(description="urn:augsvc:problem:<code>")
    title: str
    status: int
    detail: str = Field(description="what is wrong, naming the input at fault")
    code: str = Field(description="stable machine-readable code; the SDK maps it to a class")
    instance: str | None = Field(None, description="the request path")
    errors: list[ProblemFieldError] | None = None


def problems(*errors: type[AugsvcError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status once, described by the codes it can carry."""
    codes: dict[int, list[str]] = {}
    for error in errors:
        codes.setdefault(error.status, [])
        if error.code not in codes[error.status]:
            codes[error.status].append(error.code)
    return {
        status: {"model": Problem, "description": ", ".join(f"`{c}`" for c in found)}
        for status, found in sorted(codes.items())
    }


#: What every /v1 route can answer: keys (when configured) and bad query parameters.
READ = (Unauthorized, Forbidden, ValidationFailed)
#: Writes also need the store.
WRITE = (*READ, StoreUnavailable)
#: Routes that resolve a recipe reference (or a name) in the store.
LOOKUP = (InvalidReference, RecipeNotFound, StoreUnavailable)


# Names and references are checked by the routes themselves (their errors say what a
# valid one looks like); the patterns here only document them.
_NAME_DOC = {"pattern": f"^{NAME_PATTERN}$"}
_REF_DOC = {"pattern": f"^({REF_PATTERN})$"}
_REF_HELP = "name (latest version), name@N or sha256:<64 hex>"

NamePath = Annotated[
    str, Path(description="1-64 of a-z 0-9 . _ -, first a letter or digit",
              json_schema_extra=_NAME_DOC),
]  # fmt: skip
RefPath = Annotated[str, Path(description=_REF_HELP, json_schema_extra=_REF_DOC)]
RefQuery = Annotated[str, Query(description=_REF_HELP, max_length=200, json_schema_extra=_REF_DOC)]
OptionalRefQuery = Annotated[
    str | None, Query(description=_REF_HELP, max_length=200, json_schema_extra=_REF_DOC)
]

_BINARY = {"type": "string", "format": "binary"}

#: Extra success answers of PUT routes that create or replace.
UNCHANGED: dict[int | str, dict[str, Any]] = {
    200: {"description": "already stored with this content (recipes) or replaced (datasets)"}
}
#: The answer to a conditional GET whose ``If-None-Match`` matches.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "If-None-Match matched: the cached copy is current"}
}

#: ``openapi_extra`` of routes that read a recipe document from the raw body.
RECIPE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Recipe"}},
            "application/yaml": {"schema": {"type": "string", "description": "the same, as YAML"}},
        },
    }
}


#: ``openapi_extra`` of PUT /v1/datasets/{name}, which reads its JSON body itself.
DATASET_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DatasetSpec"}}},
    }
}


#: The multipart parts that carry a batch's targets: boxes, keypoints, masks.
TARGET_PARTS: dict[str, Any] = {
    "targets": {"type": "string", "description": "a JSON array, one object (or null) per "
                "image: boxes, labels, keypoints, box_format (xyxy, xywh, cxcywh)"},
    "masks": {"type": "array", "items": _BINARY,
              "description": "one single-channel label map per image (PNG, TIFF, BMP, GIF)"},
}  # fmt: skip


def images_body(safetensors: bool, raw_images: bool, targets: bool = False) -> dict[str, Any]:
    """``openapi_extra`` of routes that read images from the raw body."""
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "images": {"type": "array", "items": _BINARY,
                               "description": "JPEG, PNG, WebP, BMP, GIF or TIFF files"},
                    "recipe": {"type": "string",
                               "description": "an inline recipe as JSON (instead of ?recipe=)"},
                },
            }
        }
    }  # fmt: skip
    if targets:
        content["multipart/form-data"]["schema"]["properties"].update(TARGET_PARTS)
    if safetensors:
        content["application/x-safetensors"] = {
            "schema": {**_BINARY, "description": "a uint8 tensor `images` (N, C, H, W)"}
        }
    if raw_images:
        content["image/*"] = {"schema": _BINARY}
    return {"requestBody": {"required": True, "content": content}}


def problem_media_type(schema: dict[str, Any]) -> dict[str, Any]:
    """File every 4xx/5xx response body under ``application/problem+json``."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[:1] in ("4", "5") and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
    return schema


def install_openapi(app: FastAPI) -> None:
    """Post-process FastAPI's generated document once, on first request for it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = problem_media_type(generate())
            recipe = recipe_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(recipe.pop("$defs", {}))
            components["Recipe"] = recipe
            canonical = recipe_json_schema(
                ref_template="#/components/schemas/{model}", mode="serialization"
            )
            components.update(canonical.pop("$defs", {}))
            components["RecipeCanonical"] = canonical
            components["DatasetSpec"] = DatasetSpec.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
