"""Reading ``application/x-augsvc-stream`` bodies in tests: frames as (tensors, metadata)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import httpx
import numpy as np
import safetensors.numpy

from augsvc.codec import read_frame

Frame = tuple[dict[str, np.ndarray], dict[str, str]]


def split_frames(chunks: Iterable[bytes]) -> Iterator[Frame]:
    """Frames of a body arriving in any chunks; it must end on a frame boundary."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while (got := read_frame(buf)) is not None:
            blob, used = got
            del buf[:used]
            header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
            yield safetensors.numpy.load(blob), header.get("__metadata__", {})
    assert not buf, "stream ended inside a frame"


def frames(response: httpx.Response) -> Iterator[Frame]:
    """Frames of a streamed response, as they arrive."""
    return split_frames(response.iter_raw())
