"""``Client``: the synchronous client (httpx.Client, threads for pipelining).

Every method builds its request with :mod:`augsvc_client.request` and sends it through
one retry loop (:mod:`augsvc_client.retry`); :class:`AsyncClient` is the same over
httpx.AsyncClient.
"""

from __future__ import annotations

import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from . import request
from .arrays import Output, check_output
from .batches import AugmentedBatch, StreamBatch
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

DEFAULT_TIMEOUT = 60.0
#: Where a client connects when neither ``base_url`` nor ``AUGSVC_URL`` says (the
#: address ``augsvc serve`` listens on by default), as the command line does.
DEFAULT_URL = "http://127.0.0.1:8000"


def connection(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """The URL and key to use: the arguments, else ``AUGSVC_URL`` / ``AUGSVC_API_KEY``
    from the environment (as the ``augsvc`` command reads them), else the local default
    and no key. ``api_key=""`` sends no key even when the environment has one."""
    url = base_url or os.environ.get("AUGSVC_URL") or DEFAULT_URL
    key = api_key if api_key is not None else os.environ.get("AUGSVC_API_KEY") or None
    return url.rstrip("/"), key


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def transport_error(exc: httpx.TransportError) -> TransportError:
    error = TransportError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    error.__cause__ = exc
    return error


class Client:
    """A connection pool to one augsvc server.

    ``base_url`` and ``api_key`` default to ``AUGSVC_URL`` and ``AUGSVC_API_KEY`` (then
    ``http://127.0.0.1:8000`` and no key). ``timeout`` is per request (seconds or an
    ``httpx.Timeout``); ``retry`` bounds the retries of idempotent calls; ``transport``
    replaces httpx's (tests, custom TLS, ...). Use it as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url, api_key = connection(base_url, api_key)
        self.retry = retry if retry is not None else RetryPolicy()
        self._rng = rng
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=auth_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    # --- plumbing ----------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, call: Call) -> Any:
        state = RetryState(self.retry, call.idempotent, rng=self._rng)
        while True:
            try:
                response = self._http.send(call.build(self._http))
            except httpx.TransportError as exc:
                error: AugsvcError = transport_error(exc)
            else:
                if response.status_code < 400:
                    return call.decode(response)
                error = error_for(response)
            time.sleep(state.delay(error))

    # --- recipes -----------------------------------------------------------------------

    def put_recipe(
        self, name: str, recipe: Mapping[str, Any] | str | Path, if_match: str | None = None
    ) -> dict[str, Any]:
        """Store ``recipe`` (a dict or a .json/.yaml file) under ``name``.

        Returns ``{name, version, digest, recipe, created_at}``; the same content gives
        the same version. ``if_match`` (a digest) refuses with PreconditionFailed when
        the latest version is not that one.
        """
        return self._send(request.put_recipe(name, recipe, if_match))

    def get_recipe(self, ref: str) -> dict[str, Any]:
        """A stored recipe by ``name`` (latest), ``name@N`` or ``sha256:<hex>``."""
        return self._send(request.get_recipe(ref))

    def list_recipes(self) -> list[dict[str, Any]]:
        """The latest version of every recipe (records as from :meth:`get_recipe`)."""
        return self._send(request.list_recipes())

    def recipe_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name``, oldest first."""
        return self._send(request.recipe_versions(name))

    def delete_recipe(self, name: str) -> None:
        self._send(request.delete_recipe(name))

    def ops(self) -> Any:
        """The op catalogue with parameter schemas."""
        return self._send(request.ops())

    def preview(self, ref: str, seed: int = 0, n: int = 16, image: Any = None) -> bytes:
        """A PNG grid of ``n`` augmentations (sample keys 0..n-1) of ``image`` (a path,
        bytes, PIL image, array or tensor, as ``augment`` takes), or of the server's
        sample photo when ``image`` is None."""
        return self._send(request.preview(ref, seed, n, image))

    # --- datasets ----------------------------------------------------------------------

    def put_dataset(
        self, name: str, kind: str = "folder", path: str | None = None, *, url: str | None = None
    ) -> dict[str, Any]:
        """Register (or replace) a server-side image source: ``kind`` folder or
        webdataset, at ``path`` (under the server's data roots) or ``url``
        (``s3://bucket/prefix``). Returns the record, with ``size`` and ``classes``."""
        return self._send(request.put_dataset(name, kind, path, url))

    def get_dataset(self, name: str) -> dict[str, Any]:
        """One dataset's record: ``kind``, ``path`` or ``url``, ``size``, ``classes``."""
        return self._send(request.get_dataset(name))

    def list_datasets(self) -> list[dict[str, Any]]:
        """Every dataset's record, by name (a source the server cannot read any more has
        ``size`` None and an ``error``)."""
        return self._send(request.list_datasets())

    def delete_dataset(self, name: str) -> None:
        """Remove the registration (the files stay)."""
        self._send(request.delete_dataset(name))

    # --- augmentation ------------------------------------------------------------------

    def augment(
        self,
        images: Any,
        recipe: str | Mapping[str, Any],
        seed: int | None = None,
        offset: int = 0,
        return_params: bool = False,
        output: AugmentOutput = "numpy",
        targets: Sequence[Any] | None = None,
    ) -> AugmentedBatch:
        """Augment ``images`` (paths, bytes, PIL, numpy, torch; see ``inputs``).

        ``recipe`` is a stored reference or an inline dict. With an explicit ``seed``
        the call is idempotent and retried on 429/503/connection errors; without one
        the server picks a seed (``batch.seed``) and the call is not retried.
        ``output="list"`` returns ``images`` as a list of (C, H, W) uint8 arrays, for
        recipes whose samples end at different sizes or channel counts.
        ``targets``: one mapping (boxes, labels, keypoints, masks) or None per image;
        ``batch.targets`` then holds each image's moved targets in the same kinds
        (``augsvc_client.targets``).
        """
        call = request.augment(
            images,
            recipe,
            seed=seed,
            offset=offset,
            return_params=return_params,
            output=output,
            targets=targets,
        )
        return self._send(call)

    def augment_iter(
        self,
        dataset: Iterable[Any],
        batch_size: int,
        recipe: str | Mapping[str, Any],
        seed: int | None = None,
        prefetch: int = 4,
        return_params: bool = False,
        output: AugmentOutput = "numpy",
    ) -> Iterator[AugmentedBatch]:
        """Augment a local dataset batch by batch, ``prefetch`` requests in flight.

        ``dataset`` is indexable (a list, a map-style torch Dataset) or any iterable (a
        generator, a torch IterableDataset); see :mod:`augsvc_client.pipeline`. Batches
        come in order; sample keys are dataset positions; labels of ``(image, label)``
        items are carried into ``batch.labels``. Without a seed, one random seed is
        chosen for the whole pass (``batch.seed``).
        """
        if prefetch < 1:
            raise ValueError("prefetch must be >= 1")
        seed = choose_seed(seed)

        def send(start: int, images: list[Any], labels: Any) -> AugmentedBatch:
            batch = self.augment(images, recipe, seed, start, return_params, output)
            return with_labels(batch, labels, output)

        def indexed(start: int, stop: int) -> AugmentedBatch:
            return send(start, *load_batch(dataset, start, stop))  # type: ignore[arg-type]

        jobs: Iterator[tuple[Callable[..., AugmentedBatch], tuple[Any, ...]]]
        if is_indexed(dataset):
            bounds = batch_bounds(len(dataset), batch_size)  # type: ignore[arg-type]
            jobs = ((indexed, bound) for bound in bounds)
        else:  # read here, in order, as the pipeline asks for the next batch
            jobs = (
                (send, (start, *split_items(items, start)))
                for start, items in chunks(dataset, batch_size)
            )
        pending: deque[Future[AugmentedBatch]] = deque()
        with ThreadPoolExecutor(max_workers=prefetch, thread_name_prefix="augsvc") as pool:
            try:
                for work, args in jobs:
                    pending.append(pool.submit(work, *args))
                    if len(pending) >= prefetch:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    def stream(
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
    ) -> Iterator[StreamBatch]:
        """Batches of a server-side dataset for this rank, resuming after a dropped
        connection from the last complete frame (bounded by the retry policy, whose
        count restarts whenever a frame arrives).

        ``mix`` turns on server-side MixUp / CutMix with timm's parameter names
        (``mixup_alpha``, ``cutmix_alpha``, ``cutmix_minmax``, ``mix_prob``,
        ``switch_prob``, ``correct_lam``, ``label_smoothing``, ``num_classes``): each
        batch then carries ``targets`` (soft targets), ``lam`` and ``partners``."""
        check_output(output)
        cursor = StreamCursor(
            dataset, recipe, seed, epoch, batch_size, rank, world_size, start, drop_last,
            mix=mix,
        )  # fmt: skip
        state = RetryState(self.retry, idempotent=True, rng=self._rng)
        while True:
            frames = FrameBuffer()
            try:
                response = self._http.send(cursor.call().build(self._http), stream=True)
                try:
                    if response.status_code >= 400:
                        response.read()
                        raise error_for(response)
                    for chunk in response.iter_bytes():
                        for blob in frames.feed(chunk):
                            batch = decode_stream_frame(blob, output)
                            cursor.accept(batch)
                            state.reset()
                            yield batch
                finally:
                    response.close()
                if frames.pending == 0:
                    return
                error: AugsvcError = TransportError(
                    f"stream ended inside a frame ({frames.pending} bytes held back)"
                )
            except httpx.TransportError as exc:
                error = transport_error(exc)
            except AugsvcError as exc:
                error = exc
            time.sleep(state.delay(error))
