"""GET /ui: the recipe playground, one static page served by the service itself.

The page and its assets are files shipped in the package (``augsvc/api/static/
playground``); nothing is fetched from elsewhere, and every response carries a strict
Content-Security-Policy: scripts and styles from this origin only, no inline script,
connections to this origin only. What the page shows comes from the /v1 routes it calls.

The page is behind the same read check as /v1. A browser cannot attach a bearer key to
a navigation, so an unauthenticated request here is answered with a Basic challenge:
the browser asks for a key (as the password, any user name) and then sends it by itself
on every request to this origin, the page's own /v1 calls included.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import Response

from augsvc.api.deps import require_read
from augsvc.api.static_files import static_response
from augsvc.codec import sample_photo_bytes
from augsvc.errors import Unauthorized

PAGE_DIR: Final = files("augsvc.api") / "static" / "playground"
ASSETS: Final = frozenset(
    {"playground.js", "schema-form.js", "safetensors.js", "playground.css", "favicon.svg"}
)

#: No inline script or style, no plugin, no framing, no form posts; images may be blob:
#: URLs (the grid is shown from memory), which the page may also read back.
CSP: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "connect-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def browser_read(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """The read check of /v1; a missing or unknown key is answered with the Basic
    challenge a browser acts on (the /v1 routes keep their Bearer challenge)."""
    try:
        require_read(request, authorization, x_api_key)
    except Unauthorized as exc:
        exc.headers["WWW-Authenticate"] = 'Basic realm="augsvc", charset="UTF-8"'
        raise


router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(browser_read)])


@router.get("")
async def page() -> Response:
    return static_response(PAGE_DIR, "index.html", frozenset({"index.html"}), HEADERS)


@router.get("/assets/{name}")
async def asset(name: str) -> Response:
    return static_response(PAGE_DIR, name, ASSETS, HEADERS)


@router.get("/sample.jpg")
async def sample_photo() -> Response:
    """The bundled photo the GET preview shows: the page sends it to /v1/augment to
    read one sample's drawn parameters."""
    return Response(sample_photo_bytes(), media_type="image/jpeg", headers=HEADERS)
