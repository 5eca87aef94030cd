"""``create_app(settings)``: the FastAPI application, assembled from its parts.

Nothing is built at import time: the lifespan opens the store, the plan cache, the
engine executor and the metrics registry for this app alone, and closes them on shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from augsvc.api.auth import KeyRing
from augsvc.api.executor import EngineExecutor
from augsvc.api.metrics import Metrics, MetricsMiddleware
from augsvc.api.openapi import install_openapi
from augsvc.api.plans import PlanCache, RecipeResolver
from augsvc.api.problems import CatchAllMiddleware, install_problem_handlers
from augsvc.api.routers import augment, datasets, health, ops, preview, recipes
from augsvc.api.streams import StreamPools
from augsvc.config import Settings
from augsvc.engine import resolve_device
from augsvc.pixel_budget import PixelBudget
from augsvc.store import open_dataset_store, open_recipe_store

log = logging.getLogger("augsvc.api")


def create_app(settings: Settings) -> FastAPI:
    """The service for these settings. Invalid keys or device fail here, before serving."""
    keys = KeyRing.parse(settings.api_keys.get_secret_value() if settings.api_keys else None)
    try:
        device = resolve_device(settings.device)
    except ValueError as exc:
        raise ValueError(f"AUGSVC_DEVICE: {exc}") from exc
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if keys.open:
            log.warning("no API keys configured: the service is open")
        store = open_recipe_store(settings)
        plans = PlanCache(
            settings.plan_cache_size,
            on_hit=metrics.plan_cache_hits.inc,
            on_miss=metrics.plan_cache_misses.inc,
        )
        executor = EngineExecutor(settings.engine_threads, settings.queue_depth, metrics)
        app.state.store = store
        app.state.plans = plans
        app.state.resolver = RecipeResolver(store, plans, settings.plan_cache_size)
        app.state.executor = executor
        app.state.datasets = open_dataset_store(settings, store)
        app.state.sources = datasets.SourceCache()
        app.state.stream_pools = StreamPools(settings.max_streams)
        app.state.pixel_budget = PixelBudget(
            settings.max_request_pixels,
            settings.max_inflight_pixels,
            on_change=metrics.pixels_held.set,
            on_reject=metrics.pixels_rejected.inc,
        )
        log.info(
            "augsvc %s: store=%s device=%s engine_threads=%d queue_depth=%d",
            augsvc_version(), "redis" if settings.redis_url else "memory", device,
            settings.engine_threads, settings.queue_depth,
        )  # fmt: skip
        try:
            yield
        finally:
            app.state.stream_pools.shutdown()
            executor.shutdown()
            await store.close()

    app = FastAPI(
        title="augsvc",
        version=augsvc_version(),
        summary="Seeded, batched image augmentation as a service",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.device = device
    app.state.metrics = metrics
    app.state.draining = lambda: False  # serve() points this at uvicorn's shutdown flag
    install_problem_handlers(app)
    install_openapi(app)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # added last = outermost
    for module in (health, ops, recipes, preview, augment, datasets):
        app.include_router(module.router)
    return app


def augsvc_version() -> str:
    try:
        return version("augsvc")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"
