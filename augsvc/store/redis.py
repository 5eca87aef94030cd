"""Redis recipe store, so any replica serves any request.

Key layout (``P`` = the configured prefix; names cannot contain ``:`` so keys never collide):

    P:recipes                    set     names that currently have at least one version
    P:recipe:{name}              hash    version -> JSON {"digest", "created_at", "document"}
    P:recipe:{name}:last_version string  highest version ever issued (kept after DELETE,
                                         so versions are never reused)
    P:digest:{hex}               set     "name@version" of every version with that digest

Writes that read-then-decide run as one Lua script (put) or a WATCH/MULTI transaction
(delete), so concurrent writers on any replica never share a version number.

The connection helpers and :func:`store_errors` are shared with the dataset store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from augsvc.errors import PreconditionFailed, RecipeNotFound, StoreUnavailable
from augsvc.recipes.refs import check_name
from augsvc.store.base import StoredRecipe, check_digest, check_version

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_HEALTH_CHECK_INTERVAL_S = 10

# Failures that mean "Redis is not there right now" rather than a bug in a command.
# ReadOnlyError: we reached a replica, e.g. in the middle of a failover.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)


def connect(
    url: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    health_check_interval_s: int = DEFAULT_HEALTH_CHECK_INTERVAL_S,
) -> Redis:
    """A lazily connecting client that fails fast and heals itself.

    Short timeouts turn an outage into StoreUnavailable (a 503) within seconds instead of
    hanging requests. One quick retry plus the health check make the pool drop connections
    that died with a Redis restart and reconnect, so the store never has to be recreated.
    redis-py picks the hiredis parser by itself when it is installed.
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        health_check_interval=health_check_interval_s,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
    )


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Turn connection failures into StoreUnavailable("<what> unreachable: <ErrorType>").

    Only the exception type goes into the message: the detail reaches HTTP clients and
    logs, and must never carry the Redis URL (it may hold a password) or internal hosts.
    The original exception stays chained for server-side debugging.
    """
    try:
        yield
    except _UNREACHABLE as exc:
        raise StoreUnavailable(f"{what} unreachable: {type(exc).__name__}") from exc


# KEYS: versions hash, last_version, names set, digest set. ARGV: digest, record, if_match
# ("" = none), name. Returns {0, version, record} (unchanged), {1, version, record} (new),
# {-1, version, digest} (If-Match failed against the latest) or {-1} (name missing).
_PUT_LUA = """
local last = redis.call('GET', KEYS[2])
local current = false
if last then current = redis.call('HGET', KEYS[1], last) end
if current then
  local current_digest = cjson.decode(current)['digest']
  if ARGV[3] ~= '' and ARGV[3] ~= '*' and ARGV[3] ~= current_digest then
    return {-1, last, current_digest}
  end
  if current_digest == ARGV[1] then return {0, last, current} end
elseif ARGV[3] ~= '' then
  return {-1}
end
local version = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], version, ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[4] .. '@' .. version)
return {1, tostring(version), ARGV[2]}
"""

# KEYS: versions hash, last_version. Returns {version, record} or nil. One script so a
# concurrent delete + re-put cannot slip between reading the number and the record.
_LATEST_LUA = """
local last = redis.call('GET', KEYS[2])
if not last then return false end
local record = redis.call('HGET', KEYS[1], last)
if not record then return false end
return {last, record}
"""


class RedisRecipeStore:
    """RecipeStore on Redis (see the module docstring for the key layout)."""

    def __init__(self, client: Redis, prefix: str = "augsvc") -> None:
        self._redis = client
        self._prefix = prefix
        self._put_script = client.register_script(_PUT_LUA)
        self._latest_script = client.register_script(_LATEST_LUA)

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "augsvc",
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        health_check_interval_s: int = DEFAULT_HEALTH_CHECK_INTERVAL_S,
    ) -> RedisRecipeStore:
        client = connect(url, timeout_s=timeout_s, health_check_interval_s=health_check_interval_s)
        return cls(client, prefix)

    # -- keys -------------------------------------------------------------------------

    @property
    def client(self) -> Redis:
        """The connection pool, shared with the dataset store."""
        return self._redis

    def _names_key(self) -> str:
        return f"{self._prefix}:recipes"

    def _versions_key(self, name: str) -> str:
        return f"{self._prefix}:recipe:{name}"

    def _last_version_key(self, name: str) -> str:
        return f"{self._prefix}:recipe:{name}:last_version"

    def _digest_key(self, digest: str) -> str:
        return f"{self._prefix}:digest:{digest.removeprefix('sha256:')}"

    # -- RecipeStore ------------------------------------------------------------------

    async def put(
        self, name: str, document: dict[str, Any], digest: str, *, if_match: str | None = None
    ) -> tuple[StoredRecipe, bool]:
        check_name(name)
        check_digest(digest)
        record = json.dumps(
            {"digest": digest, "created_at": time.time(), "document": document},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        keys = [
            self._versions_key(name),
            self._last_version_key(name),
            self._names_key(),
            self._digest_key(digest),
        ]
        with store_errors("recipe store"):
            reply = await self._put_script(keys=keys, args=[digest, record, if_match or "", name])
        status = int(reply[0])
        if status < 0:
            if len(reply) == 1:
                raise PreconditionFailed(f"recipe {name!r} does not exist; If-Match cannot match")
            raise PreconditionFailed(
                f"recipe {name!r} changed: If-Match {if_match!r} does not match "
                f"the current version {reply[1]} ({reply[2]})"
            )
        return _decode(name, int(reply[1]), reply[2]), status == 1

    async def get(self, name: str, version: int | None = None) -> StoredRecipe:
        check_name(name)
        if version is None:
            return await self._latest(name)
        check_version(version)
        with store_errors("recipe store"):
            record = await self._redis.hget(self._versions_key(name), str(version))
            if record is None and await self._redis.exists(self._versions_key(name)):
                raise RecipeNotFound(f"recipe {name!r} has no version {version}")
        if record is None:
            raise RecipeNotFound(f"recipe {name!r} not found")
        return _decode(name, version, record)

    async def _latest(self, name: str) -> StoredRecipe:
        keys = [self._versions_key(name), self._last_version_key(name)]
        with store_errors("recipe store"):
            reply = await self._latest_script(keys=keys)
        if reply is None:
            raise RecipeNotFound(f"recipe {name!r} not found")
        return _decode(name, int(reply[0]), reply[1])

    async def get_by_digest(self, digest: str) -> StoredRecipe:
        check_digest(digest)
        with store_errors("recipe store"):
            holders = await self._redis.smembers(self._digest_key(digest))
            # Same choice as the memory store: first by (name, version). A holder deleted
            # since SMEMBERS is skipped rather than reported as missing.
            for name, version in sorted(_split_holder(h) for h in holders):
                record = await self._redis.hget(self._versions_key(name), str(version))
                if record is not None:
                    return _decode(name, version, record)
        raise RecipeNotFound(f"no stored recipe has digest {digest}")

    async def versions(self, name: str) -> list[StoredRecipe]:
        check_name(name)
        with store_errors("recipe store"):
            records = await self._redis.hgetall(self._versions_key(name))
        if not records:
            raise RecipeNotFound(f"recipe {name!r} not found")
        return [_decode(name, int(v), records[v]) for v in sorted(records, key=int)]

    async def list(self) -> list[StoredRecipe]:
        with store_errors("recipe store"):
            names = sorted(await self._redis.smembers(self._names_key()))
            async with self._redis.pipeline(transaction=False) as pipe:
                for name in names:
                    keys = [self._versions_key(name), self._last_version_key(name)]
                    await self._latest_script(keys=keys, client=pipe)
                replies = await pipe.execute()
        return [
            _decode(name, int(reply[0]), reply[1])
            for name, reply in zip(names, replies, strict=True)
            if reply is not None  # deleted since SMEMBERS
        ]

    async def delete(self, name: str) -> int:
        check_name(name)
        versions_key = self._versions_key(name)
        with store_errors("recipe store"):
            async with self._redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        # WATCH: a put landing between HGETALL and EXEC aborts and retries,
                        # so no version escapes the digest index clean-up.
                        await pipe.watch(versions_key)
                        records = await pipe.hgetall(versions_key)
                        if not records:
                            raise RecipeNotFound(f"recipe {name!r} not found")
                        pipe.multi()
                        for version, record in records.items():
                            digest = json.loads(record)["digest"]
                            pipe.srem(self._digest_key(digest), f"{name}@{version}")
                        pipe.delete(versions_key)
                        pipe.srem(self._names_key(), name)
                        await pipe.execute()
                        return len(records)
                    except WatchError:
                        continue

    async def ping(self) -> None:
        with store_errors("recipe store"):
            await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()


def _split_holder(holder: str) -> tuple[str, int]:
    name, _, version = holder.rpartition("@")
    return name, int(version)


def _decode(name: str, version: int, record: str) -> StoredRecipe:
    data = json.loads(record)
    return StoredRecipe(
        name=name,
        version=version,
        digest=data["digest"],
        document=data["document"],
        created_at=float(data["created_at"]),
    )
