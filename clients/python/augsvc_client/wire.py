"""The service's binary formats: safetensors blobs and ``application/x-augsvc-stream``.

A stream body is a sequence of frames, each an 8-byte little-endian unsigned length
followed by that many bytes of safetensors. :class:`FrameBuffer` is fed the body in
whatever chunks the network delivers and hands back only whole frames, so a connection
that drops mid-frame loses nothing that was handed out.
"""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator, Iterator

import numpy as np
import safetensors.numpy

from .arrays import Output, convert
from .batches import StreamBatch
from .errors import BY_CODE, from_problem
from .targets import frame_targets

FRAME_HEADER = struct.Struct("<Q")
#: A frame claiming more than this is garbage (or not a stream at all).
MAX_FRAME_BYTES = 4 * 1024**3


class ImagesBody:
    """A safetensors body holding one uint8 tensor ``images``, sent without copying.

    The header is written here and the pixels go out as slices of the caller's
    contiguous array, with an explicit Content-Length. Building the whole body first
    (``safetensors.numpy.save``) copied the whole batch, and httpcore's send loop
    re-slices a single large buffer after every partial send, copying its remainder
    each time: together a noticeable share of the trainer's CPU per batch.
    """

    CHUNK = 1 << 20

    def __init__(self, batch: np.ndarray) -> None:
        if batch.dtype != np.uint8 or batch.ndim != 4:
            raise ValueError(
                f"expected a uint8 (N, C, H, W) array, got {batch.dtype} {batch.shape}"
            )
        self.array = np.ascontiguousarray(batch)
        entry = {"dtype": "U8", "shape": list(self.array.shape),
                 "data_offsets": [0, self.array.nbytes]}  # fmt: skip
        # Sorted keys, as the server's writer: the same batch gives the same bytes.
        header = json.dumps({"images": entry}, separators=(",", ":"), sort_keys=True).encode()
        header += b" " * (-len(header) % 8)  # safetensors aligns the data to 8 bytes
        self.header = FRAME_HEADER.pack(len(header)) + header

    def __len__(self) -> int:
        return len(self.header) + self.array.nbytes

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The body in pieces of at most :attr:`CHUNK` bytes; a fresh iterator per call
        (each retry sends the body again)."""
        yield self.header
        data = memoryview(self.array.reshape(-1))
        for start in range(0, len(data), self.CHUNK):
            yield data[start : start + self.CHUNK]

    async def achunks(self) -> AsyncIterator[bytes | memoryview]:
        for chunk in self.chunks():
            yield chunk

    def __bytes__(self) -> bytes:
        return b"".join(self.chunks())


def read_safetensors(blob: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors as numpy arrays, string metadata) of a safetensors blob."""
    if len(blob) < 8:
        raise ValueError(f"not a safetensors blob: {len(blob)} bytes")
    (header_len,) = FRAME_HEADER.unpack_from(blob)
    if header_len > len(blob) - 8:
        raise ValueError("not a safetensors blob: header length past the end")
    header = json.loads(blob[8 : 8 + header_len])
    metadata = header.get("__metadata__") or {}
    return safetensors.numpy.load(blob), {str(k): str(v) for k, v in metadata.items()}


class FrameBuffer:
    """Incremental frame splitter: ``feed(chunk)`` yields every frame completed so far."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_frame_bytes

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back (non-zero at the end = truncated)."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self._buf += chunk
        while len(self._buf) >= FRAME_HEADER.size:
            (length,) = FRAME_HEADER.unpack_from(self._buf)
            if length > self._max:
                raise ValueError(f"stream frame claims {length} bytes (limit {self._max})")
            end = FRAME_HEADER.size + length
            if len(self._buf) < end:
                return
            blob = bytes(self._buf[FRAME_HEADER.size : end])
            del self._buf[:end]
            yield blob


def decode_stream_frame(blob: bytes, output: Output = "numpy") -> StreamBatch:
    """One batch; raises the server's typed error when the frame says the stream failed
    (the server ends a stream that hits e.g. a corrupt image with such a frame)."""
    tensors, meta = read_safetensors(blob)
    if "error" in meta:
        code = meta["error"]
        status = getattr(BY_CODE.get(code), "status", None) or 500
        detail = f"stream ended early: {meta.get('detail', code)}"
        raise from_problem(status, {"code": code, "detail": detail})
    if "images" not in tensors or "indices" not in tensors:
        raise ValueError(f"stream frame without images/indices (has {sorted(tensors)})")
    targets = None
    if "targets.boxes" in tensors:  # a dataset with targets (coco, paired)
        targets = frame_targets(tensors, output)
    return StreamBatch(
        images=convert(tensors["images"], output),
        indices=convert(tensors["indices"], output),
        labels=convert(tensors.get("labels"), output),
        position=int(meta.get("position", 0)),
        epoch=int(meta.get("epoch", 0)),
        batch=int(meta.get("batch", 0)),
        digest=meta.get("digest", ""),
        targets=targets,
        soft_targets=convert(tensors.get("soft_targets"), output),
        lam=convert(tensors.get("lam"), output),
        partners=convert(tensors.get("partners"), output),
    )
