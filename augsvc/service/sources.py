"""Indexed dataset sources, kept per process: a source is listed once per registration.

Indexing walks a folder tree, a tar shard's headers or a bucket listing, which takes a
while for a large dataset, so it runs off the event loop and its result is kept (keyed
by the dataset's name and registration time: re-registering with PUT re-indexes on every
replica). The indexes of WebDataset shards in object storage are also kept in the store
(Redis), so one replica's indexing serves them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from augsvc.config import Settings
from augsvc.datasets import DatasetSpec, Source, open_source
from augsvc.datasets.object_store import ObjectStore, client_installed
from augsvc.datasets.object_urls import parse_object_url
from augsvc.datasets.remote_sources import ObjectSources
from augsvc.datasets.source_base import SourceLimits
from augsvc.errors import SampleUnreadable, ValidationFailed
from augsvc.service.lru import LRU
from augsvc.store import StoredDataset

log = logging.getLogger("augsvc.service.sources")
SOURCE_CACHE_SIZE = 32
#: Shard indexes kept by the memory cache (the embedded store: one process).
MEMORY_INDEXES = 4096
#: Shard indexes expire from Redis when unused this long (a rewritten shard gets a new key).
INDEX_TTL_S = 30 * 24 * 3600
#: How long an indexing thread waits for Redis before indexing the shard itself.
INDEX_CACHE_WAIT_S = 5.0


class MemoryIndexCache:
    def __init__(self, size: int = MEMORY_INDEXES) -> None:
        self._items: LRU[str, bytes] = LRU(size)

    def get(self, key: str) -> bytes | None:
        return self._items.get(key)

    def put(self, key: str, value: bytes) -> None:
        self._items.put(key, value)


class RedisIndexCache:
    """Shard indexes in Redis, used from indexing threads: each call runs on the event
    loop that owns the connection and waits for it. Redis being down is a cache miss."""

    def __init__(self, client: Redis, prefix: str, loop: asyncio.AbstractEventLoop) -> None:
        self._redis = client
        self._prefix = prefix
        self._loop = loop

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(INDEX_CACHE_WAIT_S)

    def get(self, key: str) -> bytes | None:
        try:
            value = self._run(self._redis.get(f"{self._prefix}:{key}"))
        except Exception as exc:
            log.warning("shard index cache unavailable (%s): indexing here", type(exc).__name__)
            return None
        return value.encode("latin-1") if isinstance(value, str) else value

    def put(self, key: str, value: bytes) -> None:
        # The client decodes replies as text; latin-1 maps bytes to characters one to one.
        text = value.decode("latin-1")
        try:
            self._run(self._redis.set(f"{self._prefix}:{key}", text, ex=INDEX_TTL_S))
        except Exception as exc:
            log.warning("shard index not shared (%s)", type(exc).__name__)


def object_sources(settings: Settings) -> ObjectSources | None:
    """The object-store side of dataset sources, or None when AUGSVC_DATA_URLS is empty."""
    if not settings.data_url_prefixes:
        return None
    store = (
        ObjectStore(settings.s3_endpoint, settings.s3_region, concurrency=settings.object_reads)
        if client_installed()
        else None
    )
    allowed = [parse_object_url(u) for u in settings.data_url_prefixes]
    return ObjectSources(store, allowed, MemoryIndexCache())


class SourceCache:
    """Indexed sources by registration. A source handed out is checked first (a few
    system calls: its folder, its shards), so a listing, a record and a stream's start
    all see a dataset whose files went away, whether this replica indexed it long ago
    or opens it now: both fail as ``sample-unreadable``."""

    def __init__(
        self,
        roots: Sequence[Path],
        size: int = SOURCE_CACHE_SIZE,
        objects: ObjectSources | None = None,
        limits: SourceLimits | None = None,
    ) -> None:
        self.roots = list(roots)
        self.objects = objects
        self.limits = limits or SourceLimits()
        self._sources: LRU[tuple[str, float], Source] = LRU(size)

    def share_indexes(self, client: Redis, prefix: str) -> None:
        """Keep shard indexes in Redis (called once the event loop runs)."""
        if self.objects is not None:
            loop = asyncio.get_running_loop()
            self.objects.index_cache = RedisIndexCache(client, prefix, loop)

    async def open(self, spec: dict[str, Any]) -> Source:
        """Index a source off the event loop."""
        parsed = DatasetSpec.model_validate(spec)
        return await asyncio.to_thread(open_source, parsed, self.roots, self.objects, self.limits)

    def remember(self, stored: StoredDataset, source: Source) -> None:
        """Keep a source indexed for its registration."""
        self._sources.put((stored.name, stored.created_at), source)

    async def get(self, stored: StoredDataset) -> Source:
        """The registration's source, still readable; SampleUnreadable when it is not."""
        key = (stored.name, stored.created_at)
        source = self._sources.get(key)
        if source is None:
            try:
                source = await self.open(stored.spec)
            except SampleUnreadable:
                raise
            except ValidationFailed as err:  # registered once, so its data changed since
                raise SampleUnreadable(
                    f"dataset {stored.name!r} can no longer be opened: {err.detail}"
                ) from None
            self._sources.put(key, source)
        else:
            await asyncio.to_thread(source.check)
        return source

    def close(self) -> None:
        if self.objects is not None and self.objects.store is not None:
            self.objects.store.close()
