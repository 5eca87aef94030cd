"""The middleware that records every HTTP request in the app's metrics, by route
*template* (``/v1/recipes/{ref}``), keeping label cardinality bounded; and the one that
lets a client go away without it being the server's error.

A client that closes its connection before its answer is counted under status
``499`` (nginx's "client closed request"), not as a 500: any client can close a
connection, and a 5xx alert must not be something a client can fire."""

from __future__ import annotations

import logging
import time

from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from augsvc.service.metrics import Metrics

#: The ``status`` label of a request whose client went away before its answer started.
CLIENT_CLOSED = "499"

log = logging.getLogger("augsvc.api")


def _route_template(scope: Scope) -> str:
    """The matched route's path template; ``unmatched`` for 404s (never the raw path)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request (outermost, so 500s are counted too)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        client_closed = False

        async def watching_receive() -> Message:
            nonlocal client_closed
            message = await receive()
            if message["type"] == "http.disconnect" and status is None:
                client_closed = True
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, watching_receive, recording_send)
        finally:
            label = CLIENT_CLOSED if client_closed else str(status or 500)
            route = _route_template(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(route, method, label).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)


class ClientGoneMiddleware:
    """A client that went away ends its request quietly: one log line, no traceback.

    Starlette raises ``ClientDisconnect`` where the body was being read (or where a
    streamed answer could no longer be written); nothing is left to answer, so the
    request just ends. Installed inside the catch-all, which would otherwise log a
    traceback and count a 500 for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            method, path = scope.get("method"), scope.get("path")
            log.info("%s %s: the client closed the connection before its answer", method, path)
