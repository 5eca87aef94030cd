"""Files shipped in a package, answered as they are, with the headers their page needs.

Only names a route lists are served (no path from the request reaches the filesystem).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources.abc import Traversable

from starlette.responses import Response

from augsvc.errors import NotFound

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def static_response(
    folder: Traversable, name: str, allowed: frozenset[str], headers: Mapping[str, str]
) -> Response:
    """``folder/name`` when ``name`` is one of ``allowed``; 404 otherwise."""
    if name not in allowed:
        raise NotFound(f"no such file: {name[:80]!r}")
    suffix = name[name.rfind(".") :]
    return Response(
        (folder / name).read_bytes(), media_type=MEDIA_TYPES[suffix], headers=dict(headers)
    )
