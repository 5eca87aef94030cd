"""Serving one dataset stream: render batches ahead of the socket, but only so far.

A producer task renders frames on the stream pool (decode + augment off the event
loop) into a queue of ``stream_prefetch`` slots; the response body drains the queue.
So decoding and augmenting batch k+1 overlaps sending batch k, and a slow reader
holds at most ``prefetch`` rendered frames plus the one being written: uvicorn's
flow control makes the body wait for the socket, the full queue makes the producer
wait for the body. When the client goes away Starlette cancels the body; its
``finally`` cancels the producer, so work stops after the batch in progress.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from augsvc.codec import frame, images_to_safetensors
from augsvc.datasets import Source, epoch_order
from augsvc.datasets.stream import StreamRequest, render_frame
from augsvc.engine import Plan
from augsvc.errors import AugsvcError, Overloaded, Unavailable
from augsvc.pipeline import JobCost, Limits, MemoryBudget
from augsvc.service.device_threads import out_of_memory
from augsvc.service.metrics import Metrics

log = logging.getLogger("augsvc.service.streams")
_DONE = object()


class StreamPools:
    """The threads that render streams (one per stream at most) and the cap on streams."""

    def __init__(self, max_streams: int, initializer: Callable[[], object] | None = None) -> None:
        self.render = ThreadPoolExecutor(
            max_streams, thread_name_prefix="augsvc-stream", initializer=initializer
        )
        self.max_streams = max_streams
        self._active = 0
        self._lock = threading.Lock()

    def claim(self) -> None:
        with self._lock:
            if self._active >= self.max_streams:
                raise Overloaded(
                    f"{self.max_streams} streams are already being served; retry later",
                    retry_after=5,
                )
            self._active += 1

    def release(self) -> None:
        with self._lock:
            self._active -= 1

    def shutdown(self) -> None:
        self.render.shutdown(wait=False, cancel_futures=True)


def error_frame(err: AugsvcError) -> bytes:
    """A last frame that says why the stream ended early (no tensors, just metadata)."""
    return frame(images_to_safetensors({}, {"error": err.code, "detail": err.detail}))


def open_stream(
    source: Source,
    plan: Plan,
    request: StreamRequest,
    *,
    device: torch.device,
    limits: Limits,
    budget: MemoryBudget,
    prefetch: int,
    pools: StreamPools,
    metrics: Metrics,
    draining: Callable[[], bool] = lambda: False,
) -> AsyncIterator[bytes]:
    """A stream's response body, once everything it can know is wrong before its first
    frame has been refused: its parameters, a batch that could never be admitted, no
    stream slot or no room for the frames it renders ahead (which it holds for its
    life)."""
    request.check(plan, len(source))
    buffered, batch = request.costs(plan, prefetch)
    budget.check(batch)
    budget.check(buffered)
    pools.claim()
    try:
        budget.acquire(buffered)
    except BaseException:
        pools.release()
        raise
    return stream_frames(
        source, plan, request, device=device, limits=limits, budget=budget,
        buffered=buffered, prefetch=prefetch, pools=pools, metrics=metrics,
        draining=draining,
    )  # fmt: skip


async def stream_frames(
    source: Source,
    plan: Plan,
    request: StreamRequest,
    *,
    device: torch.device,
    limits: Limits,
    budget: MemoryBudget,
    buffered: JobCost,
    prefetch: int,
    pools: StreamPools,
    metrics: Metrics,
    draining: Callable[[], bool] = lambda: False,
) -> AsyncIterator[bytes]:
    """The response body (:func:`open_stream` admits it). ``pools.claim()`` and
    ``budget.acquire(buffered)`` must have succeeded; this releases both.

    When the server starts shutting down (``draining()``), the stream ends at the next
    frame boundary with a 503 ``unavailable`` frame, so the client resumes from its
    last whole frame on another replica instead of losing a frame cut in half when
    the grace period runs out."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=prefetch)
    order = epoch_order(len(source), request.seed, request.epoch)
    batches = request.batches(len(source))
    # object storage: the next batch downloads, with its partners when mixing
    source = source.for_stream(order, [request.rendered(b, len(order)) for b in batches])

    async def produce() -> None:
        final = None
        try:
            for index, positions in enumerate(batches):
                if draining():
                    raise Unavailable(
                        "the server is shutting down; resume at global position "
                        f"{int(positions[0])}"
                    )
                blob = await loop.run_in_executor(
                    pools.render,
                    lambda p=positions, i=index: render_frame(
                        source, plan, request, order, p, i,
                        device=device, limits=limits, budget=budget,
                    ),
                )  # fmt: skip
                metrics.stream_frames.inc()
                await queue.put(blob)
                metrics.stream_frames_buffered.inc()
        except AugsvcError as err:
            log.warning("stream ended early: %s: %s", err.code, err.detail)
            final = error_frame(err)
        except Exception as exc:
            overloaded = out_of_memory(exc)
            if overloaded is None:
                log.exception("stream failed")
                overloaded = AugsvcError("internal error while rendering the stream")
            final = error_frame(overloaded)
        if final is not None:
            await queue.put(final)
            metrics.stream_frames_buffered.inc()
        await queue.put(_DONE)

    metrics.streams_active.inc()
    producer = asyncio.create_task(produce())
    try:
        while (item := await queue.get()) is not _DONE:
            metrics.stream_frames_buffered.dec()
            yield item  # type: ignore[misc]
    finally:
        producer.cancel()
        source.close()  # reads started for a batch nobody will render
        while not queue.empty():
            if queue.get_nowait() is not _DONE:
                metrics.stream_frames_buffered.dec()
        metrics.streams_active.dec()
        budget.release(buffered.total)
        pools.release()
