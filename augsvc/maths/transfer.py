"""Moving a batch between host and device in one copy each way.

A per-image ``.cpu()`` is a device-to-host copy and a stream sync per image, and a
per-image upload from pageable memory is a staging copy and a sync per image: on a GPU
both leave it idle between hundreds of tiny transfers. Here a batch goes down as one
copy into pinned memory (:func:`to_host`), and many host tensors go up as one packed
buffer (:func:`upload_packed`) from a per-thread ring of pinned buffers
(:class:`StagingRing`), each reused only after the event recorded behind its last copy
has passed, which is also what makes reusing it safe.

On the CPU every function hands back the tensors it was given.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch

from augsvc.maths.device import execution


def to_host(images: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The images as CPU tensors: one device-to-host copy for a whole batch (a list of
    different shapes is flattened into one buffer on the device first), one sync."""
    items = list(images.unbind(0)) if isinstance(images, torch.Tensor) else list(images)
    if not items or all(t.device.type == "cpu" for t in items):
        return items
    device = items[0].device
    flat = (
        images.reshape(-1)
        if isinstance(images, torch.Tensor)
        else torch.cat([t.reshape(-1) for t in items])
    )
    host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
    host.copy_(flat, non_blocking=True)
    torch.cuda.current_stream(device).synchronize()
    out, offset = [], 0
    for t in items:
        out.append(host[offset : offset + t.numel()].view(t.shape))
        offset += t.numel()
    return out


class StagingRing:
    """A few pinned host buffers, used in turn, for one thread's uploads.

    A buffer is handed out again only once the event recorded after its last upload
    has completed, so a non-blocking copy never reads a buffer that is being refilled
    (``Tensor.pin_memory()`` returns an already pinned tensor itself, so uploading a
    caller's pinned tensor without waiting could read it while the caller reuses it)."""

    def __init__(self, slots: int) -> None:
        self._buffers: list[torch.Tensor | None] = [None] * slots
        self._events: list[torch.cuda.Event | None] = [None] * slots
        self._next = 0
        self._reserved = 0

    def reserve(self, nbytes: int) -> torch.Tensor:
        """The next pinned buffer's first ``nbytes`` (uint8), to fill and :meth:`send`;
        waits until that buffer's previous upload has been read."""
        slot = self._next
        self._next = (slot + 1) % len(self._buffers)
        event = self._events[slot]
        if event is not None:
            event.synchronize()
        self._events[slot] = None
        buffer = self._buffers[slot]
        if buffer is None or buffer.numel() < nbytes:
            buffer = torch.empty(_rounded(nbytes), dtype=torch.uint8, pin_memory=True)
            self._buffers[slot] = buffer
        self._reserved = slot
        return buffer[:nbytes]

    def send(self, staged: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Upload what :meth:`reserve` handed out, without waiting, and mark its buffer
        busy until the copy has been read."""
        out = staged.to(device, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(device))
        self._events[self._reserved] = event
        return out

    def upload(self, host: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Copy the flat uint8 ``host`` to ``device`` through the next pinned buffer."""
        staged = self.reserve(host.numel())
        staged.copy_(host)
        return self.send(staged, device)


def _rounded(n: int) -> int:
    """Grow buffers in powers of two, so a ring settles after a few batches."""
    return 1 << max(20, (n - 1).bit_length())


_rings = threading.local()


def staging_ring(bulk: bool = False) -> StagingRing:
    """The calling thread's ring (engine threads each have their own stream too): two
    slots for pixels, so a batch's regions wait at most for the batch before last's;
    eight small ones for the parameter tables a chunk uploads, so a chunk never waits
    for an upload of its own."""
    name = "bulk" if bulk else "params"
    ring = getattr(_rings, name, None)
    if ring is None:
        ring = StagingRing(slots=2 if bulk else 8)
        setattr(_rings, name, ring)
    return ring


def pack(tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    """uint8 tensors of any shapes (and strides) as one flat host buffer, and where
    each starts in it."""
    flat = torch.empty(sum(t.numel() for t in tensors), dtype=torch.uint8)
    return flat, pack_into(flat, tensors)


def pack_into(flat: torch.Tensor, tensors: Sequence[torch.Tensor]) -> list[int]:
    """Copy the tensors one after another into ``flat``; where each starts."""
    sizes = [t.numel() for t in tensors]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64).tolist()
    for t, start, size in zip(tensors, starts[:-1], sizes, strict=True):
        flat[start : start + size].view(t.shape).copy_(t)
    return starts[:-1]


def upload_packed(tensors: Sequence[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Many uint8 host tensors on ``device`` through one copy: packed, staged in the
    thread's pinned ring, uploaded, and viewed back in their shapes on the device."""
    out = [t if t.device.type == "cpu" else t.to(device) for t in tensors]
    host = [i for i, t in enumerate(tensors) if t.device.type == "cpu"]
    if not execution(device).packed_uploads or not host:
        return out
    ring = staging_ring(bulk=True)  # packed straight into pinned memory: one host copy
    staged = ring.reserve(sum(tensors[i].numel() for i in host))
    starts = pack_into(staged, [tensors[i] for i in host])  # device-decoded ones stay
    on_device = ring.send(staged, device)
    for i, start in zip(host, starts, strict=True):
        out[i] = on_device[start : start + tensors[i].numel()].view(tensors[i].shape)
    return out


def upload_array(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array of any dtype on ``device`` through the thread's pinned ring."""
    host = torch.from_numpy(np.ascontiguousarray(array))
    if not execution(device).packed_uploads:
        return host
    staged = staging_ring().upload(host.reshape(-1).view(torch.uint8), device)
    return staged.view(host.dtype).view(host.shape)


def upload_params(arrays: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    """Per-sample parameter arrays (each (N, ...)) on ``device`` as float32, through one
    packed (N, K) upload; views of it are handed back under the same names. On the CPU
    each array is converted on its own, exactly as a plain ``torch.as_tensor`` would."""
    if not execution(device).packed_uploads:
        return {k: torch.as_tensor(v, dtype=torch.float32) for k, v in arrays.items()}
    table = pack_params(arrays)
    flat = torch.from_numpy(table).view(torch.uint8).reshape(-1)
    on_device = staging_ring().upload(flat, device).view(torch.float32).view(table.shape)
    return unpack_params(on_device, arrays)


def pack_params(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The arrays side by side as one C-contiguous float32 (N, K) table, in their order."""
    n = len(next(iter(arrays.values())))
    columns = [np.asarray(v, dtype=np.float32).reshape(n, -1) for v in arrays.values()]
    return np.ascontiguousarray(np.concatenate(columns, axis=1))


def unpack_params(table: torch.Tensor, arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """:func:`pack_params`' table split back into the arrays' names and shapes."""
    out, col = {}, 0
    for name, values in arrays.items():
        shape = np.shape(values)
        width = int(np.prod(shape[1:], dtype=np.int64))
        out[name] = table[:, col : col + width].reshape(shape)
        col += width
    return out
