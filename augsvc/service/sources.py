"""Indexed dataset sources, kept per process: a source is listed once per registration.

Indexing walks a folder tree or a tar shard's headers, which takes a while for a large
dataset, so it runs off the event loop and its result is kept (keyed by the dataset's
name and registration time: re-registering with PUT re-indexes on every replica).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from augsvc.datasets import DatasetSpec, Source, open_source
from augsvc.service.lru import LRU
from augsvc.store import StoredDataset

SOURCE_CACHE_SIZE = 32


async def open_spec(spec: dict[str, Any], roots: Sequence[Path]) -> Source:
    """Index a source off the event loop."""
    parsed = DatasetSpec.model_validate(spec)
    return await asyncio.to_thread(open_source, parsed, roots)


class SourceCache:
    def __init__(self, roots: Sequence[Path], size: int = SOURCE_CACHE_SIZE) -> None:
        self.roots = list(roots)
        self._sources: LRU[tuple[str, float], Source] = LRU(size)

    async def get(self, stored: StoredDataset) -> Source:
        key = (stored.name, stored.created_at)
        source = self._sources.get(key)
        if source is None:
            source = await open_spec(stored.spec, self.roots)
            self._sources.put(key, source)
        return source
