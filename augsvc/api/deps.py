"""Typed dependency aliases: routes declare what they need, the app's Services provide it.

Everything lives on ``request.app.state.services`` (opened by the lifespan in app.py),
so two apps in one process never share a store, cache or registry.
"""

from __future__ import annotations

from typing import Annotated

import torch
from fastapi import Depends, Header, Request

from augsvc.api.auth import KeyRing, Principal, Scope, presented_key
from augsvc.config import Settings
from augsvc.pipeline import MemoryBudget
from augsvc.service.container import Services
from augsvc.service.executor import EngineExecutor
from augsvc.service.metrics import Metrics
from augsvc.service.resolver import RecipeResolver
from augsvc.service.sources import SourceCache
from augsvc.service.stream_producer import StreamPools
from augsvc.store import DatasetStore, RecipeStore


def _services(request: Request) -> Services:
    return request.app.state.services


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> RecipeStore:
    return _services(request).store


def get_datasets(request: Request) -> DatasetStore:
    return _services(request).datasets


def get_sources(request: Request) -> SourceCache:
    return _services(request).sources


def get_streams(request: Request) -> StreamPools:
    return _services(request).streams


def get_resolver(request: Request) -> RecipeResolver:
    return _services(request).resolver


def get_executor(request: Request) -> EngineExecutor:
    return _services(request).executor


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_device(request: Request) -> torch.device:
    return request.app.state.device


def get_memory_budget(request: Request) -> MemoryBudget:
    return _services(request).memory_budget


def _authenticate(request: Request, authorization: str | None, x_api_key: str | None,
                  scope: Scope) -> Principal | None:  # fmt: skip
    keys: KeyRing = request.app.state.keys
    return keys.authenticate(presented_key(authorization, x_api_key), scope)


def require_read(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal | None:
    return _authenticate(request, authorization, x_api_key, Scope.READ)


def require_admin(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal | None:
    return _authenticate(request, authorization, x_api_key, Scope.ADMIN)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[RecipeStore, Depends(get_store)]
DatasetsDep = Annotated[DatasetStore, Depends(get_datasets)]
SourcesDep = Annotated[SourceCache, Depends(get_sources)]
StreamsDep = Annotated[StreamPools, Depends(get_streams)]
ResolverDep = Annotated[RecipeResolver, Depends(get_resolver)]
ExecutorDep = Annotated[EngineExecutor, Depends(get_executor)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
DeviceDep = Annotated[torch.device, Depends(get_device)]
MemoryBudgetDep = Annotated[MemoryBudget, Depends(get_memory_budget)]
ReadAuth = Annotated[Principal | None, Depends(require_read)]
AdminAuth = Annotated[Principal | None, Depends(require_admin)]
