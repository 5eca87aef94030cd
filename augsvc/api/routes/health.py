"""Liveness, readiness and metrics: open to everyone (probes and scrapers carry no keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from augsvc.api.deps import (
    DeviceDep,
    ExecutorDep,
    MemoryBudgetDep,
    MetricsDep,
    SettingsDep,
    StoreDep,
)
from augsvc.api.openapi import problems
from augsvc.errors import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Never touches the store or the engine."""
    return {"status": "ok"}


class PrometheusText(Response):
    media_type = CONTENT_TYPE_LATEST


@router.get("/readyz", responses=problems(StoreUnavailable))
async def readyz(
    store: StoreDep,
    settings: SettingsDep,
    device: DeviceDep,
    executor: ExecutorDep,
    budget: MemoryBudgetDep,
) -> dict[str, Any]:
    """Readiness: the store answers (StoreUnavailable -> 503 problem), plus device facts."""
    await store.ping()
    return {
        "status": "ok",
        "store": "ok",
        "store_kind": "redis" if settings.redis_url is not None else "memory",
        "device": str(device),
        "cuda": device.type == "cuda",
        "engine_threads": executor.workers,
        "queue_depth": executor.queue_depth,
        "queue_waiting": executor.waiting,
        "memory_held_bytes": budget.held,
        "memory_limit_bytes": budget.in_flight,
    }


@router.get("/metrics", response_class=PrometheusText)
async def metrics(metrics: MetricsDep) -> PrometheusText:
    """Prometheus text exposition of this process's registry."""
    return PrometheusText(generate_latest(metrics.registry))
