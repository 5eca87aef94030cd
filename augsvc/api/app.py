"""``create_app(settings)``: the FastAPI application, assembled from its parts.

Nothing is built at import time: the lifespan opens the app's :class:`Services` (store,
plan cache, engine executor, sources, stream pools) for this app alone, and closes them
on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from augsvc.api.auth import KeyRing
from augsvc.api.limits import BodyTimeoutMiddleware
from augsvc.api.metrics import ClientGoneMiddleware, MetricsMiddleware
from augsvc.api.openapi import install_openapi
from augsvc.api.problems import CatchAllMiddleware, install_problem_handlers
from augsvc.api.routes import (
    augment,
    catalogue,
    datasets,
    docs,
    health,
    playground,
    preview,
    recipes,
    whoami,
)
from augsvc.config import Settings
from augsvc.engine import resolve_device
from augsvc.ops import import_op_modules
from augsvc.service.container import open_services
from augsvc.service.metrics import Metrics

log = logging.getLogger("augsvc.api")


def create_app(settings: Settings) -> FastAPI:
    """The service for these settings. Invalid keys, device or op modules fail here,
    before serving."""
    keys = KeyRing.parse(settings.api_keys.get_secret_value() if settings.api_keys else None)
    try:
        device = resolve_device(settings.device)
    except ValueError as exc:
        raise ValueError(f"AUGSVC_DEVICE: {exc}") from exc
    import_op_modules(settings.op_module_names)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if keys.open:
            log.warning("no API keys configured: the service is open")
        services = open_services(settings, device, metrics)
        app.state.services = services
        log.info(
            "augsvc %s: store=%s device=%s engine_threads=%d queue_depth=%d",
            augsvc_version(), "redis" if settings.redis_url else "memory", device,
            services.executor.workers, settings.queue_depth,
        )  # fmt: skip
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="augsvc",
        version=augsvc_version(),
        summary="Seeded, batched image augmentation as a service",
        lifespan=lifespan,
        docs_url=None,  # routes/docs.py serves /docs and /redoc from local files
        redoc_url=None,
        # No redirect from /path/ to /path: Starlette builds its Location from the
        # request's Host header, before any key is checked, so anyone could have the
        # service point a client at a host of their choosing. A trailing slash is a 404.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.device = device
    app.state.metrics = metrics
    app.state.draining = lambda: False  # serve() points this at uvicorn's shutdown flag
    install_problem_handlers(app)
    install_openapi(app)
    app.add_middleware(ClientGoneMiddleware)  # inside the catch-all: no traceback, no 500
    app.add_middleware(
        BodyTimeoutMiddleware,
        gap_s=settings.body_read_timeout_s,
        deadline_s=settings.body_read_deadline_s,
    )
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # added last = outermost
    routes = (health, catalogue, recipes, preview, augment, datasets, whoami, docs, playground)
    for module in routes:
        app.include_router(module.router)
    return app


def augsvc_version() -> str:
    try:
        return version("augsvc")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"
