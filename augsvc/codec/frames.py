"""Stream frames: an 8-byte little-endian length, then a safetensors blob."""

from __future__ import annotations

import struct

FRAME_HEADER_BYTES = 8
_FRAME_HEADER = struct.Struct("<Q")


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
