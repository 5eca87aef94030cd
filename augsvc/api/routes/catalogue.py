"""GET /v1/ops: the op catalogue with parameter schemas, for people writing recipes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from augsvc.api.deps import ReadAuth
from augsvc.api.openapi import READ, problems
from augsvc.recipes import catalogue

router = APIRouter(prefix="/v1", tags=["ops"])


@router.get("/ops", responses=problems(*READ))
async def list_ops(_: ReadAuth) -> dict[str, Any]:
    return {"ops": catalogue()}
