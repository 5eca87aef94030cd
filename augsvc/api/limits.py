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


async def read_body(request: Request, limit: int, what: str = "request body") -> bytearray:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit``.

    With a Content-Length the body lands in one buffer allocated up front: a batch
    upload is tens of MB, and growing a buffer (then copying it into ``bytes``) cost
    more than the augmentation itself. The buffer is returned as is (writable), so the
    image tensor can be a view of it rather than another copy."""
    declared = request.headers.get("content-length")
    length = None
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise BadRequest(f"Content-Length {declared[:40]!r} is not a number") from None
        if length > limit:
            raise _too_large(limit, f"{what} ({length} bytes)")
    if length is None:
        chunks = bytearray()
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > limit:
                raise _too_large(limit, what)
        return chunks
    body = bytearray(length)
    view = memoryview(body)
    filled = 0
    async for chunk in request.stream():
        end = filled + len(chunk)
        if end > length:
            raise BadRequest(f"{what} is longer than its Content-Length ({length} bytes)")
        view[filled:end] = chunk
        filled = end
    if filled != length:
        raise BadRequest(f"{what} ended after {filled} of its {length} bytes")
    return body
