"""Request bodies read under a byte limit.

The declared Content-Length is checked before a byte is read, and the bytes actually
received are counted while streaming (a chunked upload, or a client that lies about
its length), so an oversized request is refused with 413 without being buffered whole.
"""

from __future__ import annotations

from fastapi import Request

from augsvc.errors import BadRequest, PayloadTooLarge


def _too_large(limit: int, what: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"{what} is larger than the limit of {limit} bytes")


async def read_body(request: Request, limit: int, what: str = "request body") -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise BadRequest(f"Content-Length {declared[:40]!r} is not a number") from None
        if length > limit:
            raise _too_large(limit, f"{what} ({length} bytes)")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise _too_large(limit, what)
    return bytes(chunks)
