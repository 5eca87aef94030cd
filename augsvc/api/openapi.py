"""The OpenAPI document tells the truth about errors.

FastAPI documents one error per route, a 422 ``HTTPValidationError`` as
``application/json``, which is not what the service sends. Routes declare the problems
they can answer with :func:`problems`, by the classes of the error tree, so the document
names each status with its stable codes; :func:`install_openapi` then files every error
response under ``application/problem+json``. Generated clients and schema-driven fuzzers
(schemathesis) see the statuses and media types the server really uses.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from augsvc.api.problems import PROBLEM_JSON
from augsvc.errors import (
    AugsvcError,
    Forbidden,
    InvalidReference,
    RecipeNotFound,
    StoreUnavailable,
    Unauthorized,
    ValidationFailed,
)


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
            app.openapi_schema = problem_media_type(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
