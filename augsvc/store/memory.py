"""In-memory recipe store: the embedded default for one process and for trying augsvc out.

Documents are kept as JSON text and decoded on every read, so callers can neither mutate
what is stored nor observe anything the Redis store would not give them back.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from augsvc.errors import PreconditionFailed, RecipeNotFound
from augsvc.recipes.refs import check_name
from augsvc.store.base import StoredRecipe, check_digest, check_version


@dataclass(frozen=True)
class _Version:
    digest: str
    document_json: str
    created_at: float


class MemoryRecipeStore:
    """RecipeStore in dicts behind one asyncio.Lock (puts must not interleave)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._recipes: dict[str, dict[int, _Version]] = {}
        # Highest version ever issued per name; survives delete so versions are never reused.
        self._last_version: dict[str, int] = {}
        # digest -> {(name, version)}: one document may live under several names.
        self._by_digest: dict[str, set[tuple[str, int]]] = {}

    async def put(
        self, name: str, document: dict[str, Any], digest: str, *, if_match: str | None = None
    ) -> tuple[StoredRecipe, bool]:
        check_name(name)
        check_digest(digest)
        document_json = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        async with self._lock:
            versions = self._recipes.get(name, {})
            if versions:
                latest = max(versions)
                current = versions[latest]
                if if_match is not None and if_match not in ("*", current.digest):
                    raise PreconditionFailed(
                        f"recipe {name!r} changed: If-Match {if_match!r} does not match "
                        f"the current version {latest} ({current.digest})"
                    )
                if current.digest == digest:
                    return _stored(name, latest, current), False
            elif if_match is not None:
                raise PreconditionFailed(f"recipe {name!r} does not exist; If-Match cannot match")
            version = self._last_version.get(name, 0) + 1
            record = _Version(digest, document_json, time.time())
            self._recipes.setdefault(name, {})[version] = record
            self._last_version[name] = version
            self._by_digest.setdefault(digest, set()).add((name, version))
            return _stored(name, version, record), True

    async def get(self, name: str, version: int | None = None) -> StoredRecipe:
        check_name(name)
        if version is not None:
            check_version(version)
        versions = self._recipes.get(name)
        if not versions:
            raise RecipeNotFound(f"recipe {name!r} not found")
        wanted = max(versions) if version is None else version
        if wanted not in versions:
            raise RecipeNotFound(f"recipe {name!r} has no version {version}")
        return _stored(name, wanted, versions[wanted])

    async def get_by_digest(self, digest: str) -> StoredRecipe:
        check_digest(digest)
        holders = self._by_digest.get(digest)
        if not holders:
            raise RecipeNotFound(f"no stored recipe has digest {digest}")
        name, version = min(holders)
        return _stored(name, version, self._recipes[name][version])

    async def versions(self, name: str) -> list[StoredRecipe]:
        check_name(name)
        versions = self._recipes.get(name)
        if not versions:
            raise RecipeNotFound(f"recipe {name!r} not found")
        return [_stored(name, v, versions[v]) for v in sorted(versions)]

    async def list(self) -> list[StoredRecipe]:
        return [
            _stored(name, max(versions), versions[max(versions)])
            for name, versions in sorted(self._recipes.items())
        ]

    async def delete(self, name: str) -> int:
        check_name(name)
        async with self._lock:
            versions = self._recipes.pop(name, None)
            if not versions:
                raise RecipeNotFound(f"recipe {name!r} not found")
            for version, record in versions.items():
                holders = self._by_digest[record.digest]
                holders.discard((name, version))
                if not holders:
                    del self._by_digest[record.digest]
            return len(versions)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _stored(name: str, version: int, record: _Version) -> StoredRecipe:
    return StoredRecipe(
        name=name,
        version=version,
        digest=record.digest,
        document=json.loads(record.document_json),
        created_at=record.created_at,
    )
