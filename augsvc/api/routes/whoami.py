"""GET /v1/whoami: what the presented key may do, so a client can say so before it tries.

The playground disables its save button, with the reason, for a read-only key; the
answer names the scope only, never the key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from augsvc.api.auth import KeyRing
from augsvc.api.deps import ReadAuth
from augsvc.api.openapi import READ, problems

router = APIRouter(prefix="/v1", tags=["auth"])


@router.get("/whoami", responses=problems(*READ))
async def whoami(request: Request, principal: ReadAuth) -> dict[str, Any]:
    """``keys_required``: whether the service checks keys; ``scope``: ``read`` or
    ``admin`` (an open service lets anyone write, so its scope is ``admin``)."""
    keys: KeyRing = request.app.state.keys
    scope = "admin" if principal is None else principal.scope.name.lower()
    return {"keys_required": not keys.open, "scope": scope}
