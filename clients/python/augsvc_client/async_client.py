"""``AsyncClient``: the asyncio twin of :class:`~augsvc_client.client.Client`.

Same methods, same requests (built by :mod:`augsvc_client.request`), same retry rules;
``augment_iter`` keeps ``prefetch`` requests in flight as tasks, and ``augment`` and
``stream`` are coroutines / async iterators. Image preparation (file reads, stacking,
PNG encoding) runs in a worker thread so it never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from . import request
from .arrays import Output, check_output
from .batches import AugmentedBatch, StreamBatch
from .client import DEFAULT_TIMEOUT, auth_headers, connection, transport_error
from .errors import AugsvcError, TransportError
from .pipeline import (
    batch_bounds,
    choose_seed,
    chunks,
    is_indexed,
    load_batch,
    split_items,
    with_labels,
)
from .request import AugmentOutput, Call, error_for
from .retry import RetryPolicy, RetryState
from .streaming import StreamCursor
from .wire import FrameBuffer, decode_stream_frame


class AsyncClient:
    """An async connection pool to one augsvc server (see :class:`Client` for options,
    ``AUGSVC_URL`` and ``AUGSVC_API_KEY`` included)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url, api_key = connection(base_url, api_key)
        self.retry = retry if retry is not None else RetryPolicy()
        self._rng = rng
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=auth_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    # --- plumbing ----------------------------------------------------------------------

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _send(self, call: Call) -> Any:
        state = RetryState(self.retry, call.idempotent, rng=self._rng)
        while True:
            try:
                response = await self._http.send(call.build(self._http))
            except httpx.TransportError as exc:
                error: AugsvcError = transport_error(exc)
            else:
                if response.status_code < 400:
                    return call.decode(response)
                error = error_for(response)
            await asyncio.sleep(state.delay(error))

    # --- recipes -----------------------------------------------------------------------

    async def put_recipe(
        self, name: str, recipe: Mapping[str, Any] | str | Path, if_match: str | None = None
    ) -> dict[str, Any]:
        return await self._send(request.put_recipe(name, recipe, if_match))

    async def get_recipe(self, ref: str) -> dict[str, Any]:
        return await self._send(request.get_recipe(ref))

    async def list_recipes(self) -> list[dict[str, Any]]:
        return await self._send(request.list_recipes())

    async def recipe_versions(self, name: str) -> list[dict[str, Any]]:
        return await self._send(request.recipe_versions(name))

    async def delete_recipe(self, name: str) -> None:
        await self._send(request.delete_recipe(name))

    async def ops(self) -> Any:
        return await self._send(request.ops())

    async def preview(self, ref: str, seed: int = 0, n: int = 16, image: Any = None) -> bytes:
        call = await asyncio.to_thread(request.preview, ref, seed, n, image)
        return await self._send(call)

    # --- datasets ----------------------------------------------------------------------

    async def put_dataset(
        self, name: str, kind: str = "folder", path: str | None = None, *, url: str | None = None
    ) -> dict[str, Any]:
        return await self._send(request.put_dataset(name, kind, path, url))

    async def get_dataset(self, name: str) -> dict[str, Any]:
        return await self._send(request.get_dataset(name))

    async def list_datasets(self) -> list[dict[str, Any]]:
        return await self._send(request.list_datasets())

    async def delete_dataset(self, name: str) -> None:
        await self._send(request.delete_dataset(name))

    # --- augmentation ------------------------------------------------------------------

    async def augment(
        self,
        images: Any,
        recipe: str | Mapping[str, Any],
        seed: int | None = None,
        offset: int = 0,
        return_params: bool = False,
        output: AugmentOutput = "numpy",
        targets: Sequence[Any] | None = None,
    ) -> AugmentedBatch:
        call = await asyncio.to_thread(
            request.augment,
            images,
            recipe,
            seed=seed,
            offset=offset,
            return_params=return_params,
            output=output,
            targets=targets,
        )
        return await self._send(call)

    async def augment_iter(
        self,
        dataset: Iterable[Any],
        batch_size: int,
        recipe: str | Mapping[str, Any],
        seed: int | None = None,
        prefetch: int = 4,
        return_params: bool = False,
        output: AugmentOutput = "numpy",
    ) -> AsyncIterator[AugmentedBatch]:
        """As :meth:`Client.augment_iter`; an iterable dataset is read in a worker
        thread, one batch at a time, so a slow generator never blocks the event loop."""
        if prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        seed = choose_seed(seed)

        async def send(start: int, images: list[Any], labels: Any) -> AugmentedBatch:
            batch = await self.augment(images, recipe, seed, start, return_params, output)
            return with_labels(batch, labels, output)

        async def indexed(start: int, stop: int) -> AugmentedBatch:
            loaded = await asyncio.to_thread(load_batch, dataset, start, stop)  # type: ignore[arg-type]
            return await send(start, *loaded)

        async def jobs() -> AsyncIterator[Awaitable[AugmentedBatch]]:
            if is_indexed(dataset):
                for start, stop in batch_bounds(len(dataset), batch_size):  # type: ignore[arg-type]
                    yield indexed(start, stop)
                return
            batches = chunks(dataset, batch_size)
            while (step := await asyncio.to_thread(next, batches, None)) is not None:
                start, items = step
                yield send(start, *split_items(items, start))

        pending: deque[asyncio.Task[AugmentedBatch]] = deque()
        try:
            async for job in jobs():
                pending.append(asyncio.ensure_future(job))
                if len(pending) >= prefetch:
                    yield await pending.popleft()
            while pending:
                yield await pending.popleft()
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def stream(
        self,
        dataset: str,
        recipe: str,
        seed: int,
        epoch: int = 0,
        batch_size: int = 64,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        drop_last: bool = False,
        output: Output = "numpy",
        mix: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[StreamBatch]:
        check_output(output)
        cursor = StreamCursor(
            dataset, recipe, seed, epoch, batch_size, rank, world_size, start, drop_last,
            mix=mix,
        )  # fmt: skip
        state = RetryState(self.retry, idempotent=True, rng=self._rng)
        while True:
            frames = FrameBuffer()
            try:
                response = await self._http.send(cursor.call().build(self._http), stream=True)
                try:
                    if response.status_code >= 400:
                        await response.aread()
                        raise error_for(response)
                    async for chunk in response.aiter_bytes():
                        for blob in frames.feed(chunk):
                            batch = decode_stream_frame(blob, output)
                            cursor.accept(batch)
                            state.reset()
                            yield batch
                finally:
                    await response.aclose()
                if frames.pending == 0:
                    return
                error: AugsvcError = TransportError(
                    f"stream ended inside a frame ({frames.pending} bytes held back)"
                )
            except httpx.TransportError as exc:
                error = transport_error(exc)
            except AugsvcError as exc:
                error = exc
            await asyncio.sleep(state.delay(error))
