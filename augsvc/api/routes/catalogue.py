"""GET /v1/ops: the op catalogue with parameter schemas, for people writing recipes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from augsvc.api.deps import ReadAuth
from augsvc.api.openapi import READ, problems
from augsvc.recipes import catalogue, recipe_json_schema

router = APIRouter(prefix="/v1", tags=["ops"])


@router.get("/ops", responses=problems(*READ))
async def list_ops(_: ReadAuth) -> dict[str, Any]:
    """Every op with the JSON schema of what a recipe may write (``schema``, shorthands
    included) and of its stored, canonical form (``canonical_schema``), and the whole
    recipe document's input schema (``recipe_schema``, self-contained under ``$defs``)."""
    return {"ops": catalogue(), "recipe_schema": recipe_json_schema()}
