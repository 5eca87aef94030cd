"""The memory budget: how many bytes one job, and the whole process, may hold at once.

Uploads are compressed and their pixels are not: a 36-megapixel black PNG is about
100 KB on the wire and 108 MB decoded, and a one-pixel image asked for at 16000x16000
is 768 MB of output before the engine's float working copies. So every job (an
augment request, a preview, a stream batch, ``augsvc augment``) first works out what
it will hold from headers and its plan alone (:mod:`augsvc.pipeline.cost`), then holds
that many bytes of this budget while it decodes, augments and encodes:

- a cost over ``per_job`` (``AUGSVC_MAX_JOB_BYTES``) is refused with 413 before any
  pixel is decoded, naming what to lower (output size, n, batch_size, images);
- the costs held at once never pass ``in_flight`` (``AUGSVC_MAX_INFLIGHT_BYTES``): one
  that does not fit waits up to ``wait_s`` for others to finish, then gets 503
  Overloaded with Retry-After, like a full engine queue;
- a cost larger than the whole of ``in_flight`` gets 413 at once rather than waiting
  for room that can never appear.

Bytes, not pixels: a pixel of a float32 output, of a 16-bit mask or of the engine's
warp grid costs several times a decoded uint8 pixel, and an operator sizes a pod in
bytes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from augsvc.errors import Overloaded, PayloadTooLarge
from augsvc.pipeline.cost import JobCost

RETRY_AFTER_S = 1


def mib(n: int) -> str:
    """Bytes as an operator reads them: MiB, or bytes below one."""
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} B"


class MemoryBudget:
    def __init__(
        self,
        per_job: int,
        in_flight: int,
        *,
        on_change: Callable[[int], None] = lambda _: None,
        on_reject: Callable[[], None] = lambda: None,
    ) -> None:
        self.per_job = per_job
        self.in_flight = in_flight
        self._held = 0
        self._room = threading.Condition()
        self._on_change = on_change
        self._on_reject = on_reject

    @property
    def held(self) -> int:
        """Bytes held right now, over every job and stream."""
        return self._held

    def check(self, cost: JobCost) -> None:
        """413 when ``cost`` can never be admitted, naming what to lower."""
        if cost.total > self.per_job:
            raise PayloadTooLarge(
                f"{cost.what} would hold {mib(cost.total)} ({cost.breakdown()}), more than "
                f"the {mib(self.per_job)} one job may hold (AUGSVC_MAX_JOB_BYTES): "
                f"lower {cost.lower}"
            )
        if cost.total > self.in_flight:
            raise PayloadTooLarge(
                f"{cost.what} would hold {mib(cost.total)}, more than the server holds at "
                f"once ({mib(self.in_flight)}, AUGSVC_MAX_INFLIGHT_BYTES): lower {cost.lower}"
            )

    @contextmanager
    def hold(self, cost: JobCost, *, wait_s: float = 0.0) -> Iterator[None]:
        """Hold ``cost`` of the budget for the ``with`` block.

        413 (:meth:`check`) for a cost that can never fit; 503 Overloaded when it does
        not fit within ``wait_s`` seconds because others hold the budget."""
        self.check(cost)
        self.acquire(cost, wait_s=wait_s)
        try:
            yield
        finally:
            self.release(cost.total)

    def acquire(self, cost: JobCost, *, wait_s: float = 0.0) -> None:
        """Take ``cost`` (already :meth:`check`-ed) until :meth:`release`: for holds that
        outlive a ``with`` block, such as a response body until it is sent."""
        deadline = time.monotonic() + wait_s
        with self._room:
            while self._held + cost.total > self.in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._on_reject()
                    raise Overloaded(
                        f"{cost.what} needs {mib(cost.total)}, and {mib(self._held)} of the "
                        f"{mib(self.in_flight)} the server holds at once "
                        "(AUGSVC_MAX_INFLIGHT_BYTES) are taken by other jobs; retry after "
                        "the Retry-After delay",
                        retry_after=RETRY_AFTER_S,
                    )
                self._room.wait(left)
            self._held += cost.total
            self._on_change(self._held)

    def release(self, nbytes: int) -> None:
        with self._room:
            self._held -= nbytes
            self._on_change(self._held)
            self._room.notify_all()
