"""Dataset registrations: name -> {kind, path}, kept beside the recipes.

A registration is small and unversioned (re-registering replaces it), so one JSON value
per name suffices. In Redis: ``P:dataset:{name}`` holds the JSON and ``P:datasets`` the
set of names, written together in one MULTI so listing never sees half a registration.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from redis.asyncio import Redis

from augsvc.errors import DatasetNotFound
from augsvc.recipes.refs import check_name
from augsvc.store.redis import store_errors


@dataclass(frozen=True)
class StoredDataset:
    name: str
    spec: dict[str, Any]  # {"kind": ..., "path": ...} as validated by augsvc.datasets
    created_at: float


@runtime_checkable
class DatasetStore(Protocol):
    async def put(self, name: str, spec: dict[str, Any]) -> tuple[StoredDataset, bool]:
        """Register or replace; ``created`` is False when the name existed."""
        ...

    async def get(self, name: str) -> StoredDataset:
        """DatasetNotFound when absent."""
        ...

    async def list(self) -> list[StoredDataset]:
        """Sorted by name."""
        ...

    async def delete(self, name: str) -> None:
        """DatasetNotFound when absent."""
        ...


def _encode(spec: dict[str, Any], created_at: float) -> str:
    return json.dumps({"spec": spec, "created_at": created_at}, sort_keys=True)


def _decode(name: str, raw: str) -> StoredDataset:
    record = json.loads(raw)
    return StoredDataset(name=name, spec=record["spec"], created_at=record["created_at"])


class MemoryDatasetStore:
    def __init__(self) -> None:
        self._items: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def put(self, name: str, spec: dict[str, Any]) -> tuple[StoredDataset, bool]:
        check_name(name, "dataset")
        async with self._lock:
            created = name not in self._items
            self._items[name] = _encode(spec, time.time())
            return _decode(name, self._items[name]), created

    async def get(self, name: str) -> StoredDataset:
        check_name(name, "dataset")
        raw = self._items.get(name)
        if raw is None:
            raise DatasetNotFound(f"no dataset named {name!r}")
        return _decode(name, raw)

    async def list(self) -> list[StoredDataset]:
        return [_decode(n, self._items[n]) for n in sorted(self._items)]

    async def delete(self, name: str) -> None:
        check_name(name, "dataset")
        async with self._lock:
            if self._items.pop(name, None) is None:
                raise DatasetNotFound(f"no dataset named {name!r}")


class RedisDatasetStore:
    def __init__(self, client: Redis, prefix: str = "augsvc") -> None:
        self._redis = client
        self._prefix = prefix

    def _key(self, name: str) -> str:
        return f"{self._prefix}:dataset:{name}"

    @property
    def _names(self) -> str:
        return f"{self._prefix}:datasets"

    async def put(self, name: str, spec: dict[str, Any]) -> tuple[StoredDataset, bool]:
        check_name(name, "dataset")
        raw = _encode(spec, time.time())
        with store_errors("dataset store"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._key(name), raw)
                pipe.sadd(self._names, name)
                _, added = await pipe.execute()
        return _decode(name, raw), bool(added)

    async def get(self, name: str) -> StoredDataset:
        check_name(name, "dataset")
        with store_errors("dataset store"):
            raw = await self._redis.get(self._key(name))
        if raw is None:
            raise DatasetNotFound(f"no dataset named {name!r}")
        return _decode(name, raw)

    async def list(self) -> list[StoredDataset]:
        with store_errors("dataset store"):
            names = sorted(await self._redis.smembers(self._names))
            values = await self._redis.mget([self._key(n) for n in names]) if names else []
        return [_decode(n, raw) for n, raw in zip(names, values, strict=True) if raw is not None]

    async def delete(self, name: str) -> None:
        check_name(name, "dataset")
        with store_errors("dataset store"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key(name))
                pipe.srem(self._names, name)
                removed, _ = await pipe.execute()
        if not removed:
            raise DatasetNotFound(f"no dataset named {name!r}")
