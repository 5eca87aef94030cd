"""Typed dependency aliases: routes declare what they need, app.state provides it.

Everything lives on ``request.app.state`` (set up by the lifespan in app.py), so two apps
in one process never share a store, cache or registry.
"""

from __future__ import annotations

from typing import Annotated

import torch
from fastapi import Depends, Header, Request

from augsvc.api.auth import KeyRing, Principal, Scope, presented_key
from augsvc.api.executor import EngineExecutor
from augsvc.api.metrics import Metrics
from augsvc.api.plans import PlanCache, RecipeResolver
from augsvc.config import Settings
from augsvc.pixel_budget import PixelBudget
from augsvc.store import RecipeStore


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> RecipeStore:
    return request.app.state.store


def get_plans(request: Request) -> PlanCache:
    return request.app.state.plans


def get_resolver(request: Request) -> RecipeResolver:
    return request.app.state.resolver


def get_executor(request: Request) -> EngineExecutor:
    return request.app.state.executor


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_device(request: Request) -> torch.device:
    return request.app.state.device


def get_pixel_budget(request: Request) -> PixelBudget:
    return request.app.state.pixel_budget


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
PlansDep = Annotated[PlanCache, Depends(get_plans)]
ResolverDep = Annotated[RecipeResolver, Depends(get_resolver)]
ExecutorDep = Annotated[EngineExecutor, Depends(get_executor)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
DeviceDep = Annotated[torch.device, Depends(get_device)]
PixelBudgetDep = Annotated[PixelBudget, Depends(get_pixel_budget)]
ReadAuth = Annotated[Principal | None, Depends(require_read)]
AdminAuth = Annotated[Principal | None, Depends(require_admin)]
