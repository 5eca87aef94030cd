"""Stream frames: an 8-byte little-endian length, then a safetensors blob."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Protocol

from augsvc.errors import ValidationFailed

FRAME_HEADER_BYTES = 8
_FRAME_HEADER = struct.Struct("<Q")


class SupportsRead(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def frame(blob: bytes) -> bytes:
    """One ``application/x-augsvc-stream`` frame: 8-byte little-endian length, then blob."""
    return _FRAME_HEADER.pack(len(blob)) + blob


def read_frame(buf: bytes | bytearray | memoryview) -> tuple[bytes, int] | None:
    """Parse the frame at the start of ``buf``: ``(blob, bytes consumed)``, or None while
    ``buf`` does not yet hold a whole frame (for incremental readers of a byte stream)."""
    if len(buf) < FRAME_HEADER_BYTES:
        return None
    (length,) = _FRAME_HEADER.unpack_from(buf)
    end = FRAME_HEADER_BYTES + length
    if len(buf) < end:
        return None
    return bytes(buf[FRAME_HEADER_BYTES:end]), end


def iter_frames(readable: SupportsRead, *, max_frame_bytes: int | None = None) -> Iterator[bytes]:
    """Yield the blobs of a frame stream until a clean end of input.

    Raises :class:`ValidationFailed` when the input ends inside a frame or a frame claims
    more than ``max_frame_bytes``.
    """
    while True:
        header = _read_exactly(readable, FRAME_HEADER_BYTES)
        if not header:
            return
        if len(header) < FRAME_HEADER_BYTES:
            raise ValidationFailed(
                f"truncated stream: frame header ends after {len(header)} of 8 bytes"
            )
        (length,) = _FRAME_HEADER.unpack(header)
        if max_frame_bytes is not None and length > max_frame_bytes:
            raise ValidationFailed(
                f"stream frame of {length} bytes exceeds the limit of {max_frame_bytes}"
            )
        blob = _read_exactly(readable, length)
        if len(blob) < length:
            raise ValidationFailed(
                f"truncated stream: frame of {length} bytes ends after {len(blob)}"
            )
        yield blob


def _read_exactly(readable: SupportsRead, size: int) -> bytes:
    """Read ``size`` bytes, looping over short reads; fewer only at end of input."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = readable.read(size - len(chunks))
        if not chunk:
            break
        chunks += chunk
    return bytes(chunks)
