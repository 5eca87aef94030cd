"""GET /v1/ops: the op catalogue with parameter schemas, for people writing recipes."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import APIRouter

from augsvc.api.deps import ReadAuth
from augsvc.api.openapi import READ, problems
from augsvc.recipes import catalogue

router = APIRouter(prefix="/v1", tags=["ops"])


@lru_cache(maxsize=1)
def _catalogue() -> list[dict[str, Any]]:
    return catalogue()  # building the JSON schemas is not free, and never changes


@router.get("/ops", responses=problems(*READ))
async def list_ops(_: ReadAuth) -> dict[str, Any]:
    return {"ops": _catalogue()}
