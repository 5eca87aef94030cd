"""The engine's bounded work queue: CPU/GPU work off the event loop, and a hard cap on
what may wait for it.

Decode + augment + encode of one request run as one job on a small thread pool
(``settings.engine_threads`` workers; torch releases the GIL inside its kernels, so the
event loop keeps answering /healthz and small requests meanwhile). At most
``settings.queue_depth`` jobs may wait for a worker; one more is refused at once with
503 Overloaded + Retry-After, because a queued request holds its uploaded body in
memory and a client retrying later costs less than an out-of-memory kill. A job's
memory is bounded separately, when it starts (:mod:`augsvc.pipeline.budget`), and a
device that runs out of memory anyway is the same overload: 503 + Retry-After
(:func:`augsvc.service.device_threads.out_of_memory`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from augsvc.errors import Overloaded
from augsvc.service.device_threads import out_of_memory
from augsvc.service.metrics import Metrics

T = TypeVar("T")


class EngineExecutor:
    def __init__(
        self,
        workers: int,
        queue_depth: int,
        metrics: Metrics,
        initializer: Callable[[], object] | None = None,
    ) -> None:
        self.workers = workers
        self.queue_depth = queue_depth
        self._metrics = metrics
        self.pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="augsvc-engine", initializer=initializer
        )
        self._lock = threading.Lock()
        self._admitted = 0  # waiting + running; decremented when the *thread* finishes
        self._running = 0

    @property
    def waiting(self) -> int:
        return max(0, self._admitted - self._running)

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.workers + self.queue_depth:
                self._metrics.rejected.inc()
                raise Overloaded(
                    f"the engine queue is full ({self.queue_depth} jobs waiting); "
                    "retry after the Retry-After delay",
                    retry_after=1,
                )
            self._admitted += 1
            self._publish()

    def _publish(self) -> None:
        self._metrics.queue_depth.set(self._admitted - self._running)
        self._metrics.engine_busy.set(self._running)

    def _wrap(self, fn: Callable[[], T]) -> Callable[[], T]:
        def job() -> T:
            with self._lock:
                self._running += 1
                self._publish()
            try:
                return fn()
            except Exception as exc:
                overloaded = out_of_memory(exc)
                if overloaded is None:
                    raise
                raise overloaded from None
            finally:
                with self._lock:
                    self._running -= 1
                    self._admitted -= 1
                    self._publish()

        return job

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on an engine thread; Overloaded when the queue is full.

        The slot is released when the thread finishes, not when the awaiting request
        goes away: a client that disconnects does not free capacity its job still uses.
        """
        self._admit()
        try:
            future = self.pool.submit(self._wrap(fn))
        except BaseException:
            with self._lock:
                self._admitted -= 1
                self._publish()
            raise
        future.add_done_callback(self._release_if_cancelled)
        return await asyncio.wrap_future(future)

    def _release_if_cancelled(self, future: Future[object]) -> None:
        """A job cancelled before it started (its request was cancelled) never runs its
        own release in ``_wrap``; give its slot back here."""
        if future.cancelled():
            with self._lock:
                self._admitted -= 1
                self._publish()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
