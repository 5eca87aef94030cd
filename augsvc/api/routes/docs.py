"""/docs (Swagger UI) and /redoc, rendered from files installed with the service.

FastAPI's own pages load their scripts and fonts from a CDN, so on an offline cluster
they are blank. These load everything from this origin: the Swagger UI and Redoc
bundles of the pinned ``fastapi-offline`` package, and a start-up script of ours, so
the pages run under a Content-Security-Policy with no inline script. Like the OpenAPI
document they describe, they are open to everyone.

Redoc's bundle draws its footer logo from its CDN whatever it is told; that one URL is
pointed at a local image when the bundle is served, so the page asks nothing of the
network (and the CSP has nothing to refuse).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Final

from fastapi import APIRouter
from starlette.responses import Response

from augsvc.api.static_files import MEDIA_TYPES, static_response

VENDOR_DIR: Final = files("fastapi_offline") / "static"
OWN_DIR: Final = files("augsvc.api") / "static" / "docs"
VENDOR: Final = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js",
                           "favicon.png"})  # fmt: skip
OWN: Final = frozenset({"swagger-init.js"})

#: Swagger UI and Redoc set styles at run time (and Redoc starts a worker from a blob).
CSP: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS: Final = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui() -> Response:
    return static_response(OWN_DIR, "swagger.html", frozenset({"swagger.html"}), HEADERS)


@router.get("/redoc")
async def redoc() -> Response:
    return static_response(OWN_DIR, "redoc.html", frozenset({"redoc.html"}), HEADERS)


REDOC_LOGO: Final = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def redoc_bundle() -> bytes:
    """The Redoc bundle with its one outside URL (the footer logo) pointed here."""
    return (
        (VENDOR_DIR / "redoc.standalone.js")
        .read_bytes()
        .replace(REDOC_LOGO, b"docs/assets/favicon.png")
    )


@router.get("/docs/assets/{name}")
async def asset(name: str) -> Response:
    if name == "redoc.standalone.js":
        return Response(redoc_bundle(), media_type=MEDIA_TYPES[".js"], headers=HEADERS)
    folder = OWN_DIR if name in OWN else VENDOR_DIR
    return static_response(folder, name, VENDOR | OWN, HEADERS)
