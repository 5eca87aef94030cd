"""Every error leaves the service as RFC 9457 ``application/problem+json``.

One handler renders any :class:`~augsvc.errors.AugsvcError`; the others translate what
FastAPI and Starlette raise on their own (bad query parameters, unknown routes, wrong
methods) into the same shape, and a last-resort middleware turns a bug into a logged 500
instead of a dropped connection, so clients only ever have to parse one error format.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from augsvc.codec.media_types import PROBLEM_JSON
from augsvc.errors import (
    PROBLEM_TYPE_PREFIX,
    AugsvcError,
    MethodNotAllowed,
    NotFound,
    ValidationFailed,
    all_errors,
    field_errors,
)

log = logging.getLogger("augsvc.api")


class ProblemResponse(Response):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def problem_response(err: AugsvcError, instance: str | None) -> ProblemResponse:
    return ProblemResponse(
        err.problem(instance=instance), status_code=err.status, headers=err.headers
    )


async def _augsvc_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AugsvcError)
    if exc.status >= 500:
        log.warning(
            "%s %s -> %d %s: %s", request.method, request.url.path, exc.status, exc.code, exc.detail
        )
    return problem_response(exc, request.url.path)


async def _request_validation(request: Request, exc: Exception) -> Response:
    """Bad query/path parameters: 422 naming each parameter, like a bad recipe field."""
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc)
    detail = "; ".join(f"{e.path}: {e.msg}" for e in errors[:5]) or "invalid request"
    return problem_response(ValidationFailed(detail, errors=errors), request.url.path)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: ASGIApp, scope: Scope) -> list[str]:
    """Every method some route serves at this path, asked of the routes themselves.

    Starlette's own 405 names only the first route that matched the path, so a path
    with GET, PUT and DELETE on separate routes would advertise one of them."""
    routes = getattr(app, "routes", [])
    return [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def _tree_class(status: int) -> type[AugsvcError] | None:
    """The most general class of the error tree for ``status`` (None when it has none)."""
    return next((cls for cls in all_errors() if cls.status == status), None)


async def _http_exception(request: Request, exc: Exception) -> Response:
    """What Starlette and FastAPI raise by themselves (no such route, wrong method, a
    body that is not JSON, ...), rendered through the error tree like everything else."""
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    if exc.status_code == 404:
        return problem_response(NotFound(f"no route {request.method} {path}"), path)
    if exc.status_code == 405:
        allow = allowed_methods(request.app, request.scope) or [
            (exc.headers or {}).get("Allow", "")
        ]
        err: AugsvcError = MethodNotAllowed(
            f"{request.method} is not allowed on {path}; allowed: {', '.join(allow)}",
            headers={"Allow": ", ".join(allow)},
        )
        return problem_response(err, path)
    cls = _tree_class(exc.status_code)
    if cls is not None:
        return problem_response(cls(str(exc.detail), headers=exc.headers), path)
    code = f"http-{exc.status_code}"
    body = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": "HTTP error",
        "status": exc.status_code,
        "detail": str(exc.detail),
        "code": code,
        "instance": path,
    }
    return ProblemResponse(body, status_code=exc.status_code, headers=exc.headers)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AugsvcError, _augsvc_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)


class CatchAllMiddleware:
    """Last resort: an unexpected exception becomes a logged 500 problem, never a crash.

    Starlette's ServerErrorMiddleware would answer too, but then re-raises so that the
    server logs it a second time; catching here logs once, with the traceback.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:  # too late for a problem body; the server closes the connection
                raise
            err = AugsvcError("internal error; the server log has the details")
            await problem_response(err, scope.get("path"))(scope, receive, send)
