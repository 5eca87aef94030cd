"""The index of a WebDataset shard in object storage, built once and shared.

Building it reads every header of the shard by ranged GETs (see :mod:`ranged_file`),
one request per large member, so it is worth doing once per shard *version*, not once
per replica or registration. The index is cached under a key derived from the endpoint,
bucket, key, size and ETag of the shard: a rewritten shard has another ETag and is
indexed afresh, and replicas sharing one store (Redis) reuse each other's work. The
cache is an interface here (datasets know no Redis); the service layer provides it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from typing import Protocol

from augsvc.datasets.object_store import ObjectInfo, ObjectStore
from augsvc.datasets.ranged_file import RangedFile
from augsvc.datasets.tar_index import index_tar

log = logging.getLogger("augsvc.datasets.objects")

Entry = tuple[int, int, str, int | None]  # data offset, size, sample key, label
FORMAT = 1


class IndexCache(Protocol):
    """Blocking get/put of opaque bytes; a failing cache behaves as an empty one."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...


class NoIndexCache:
    def get(self, key: str) -> bytes | None:
        return None

    def put(self, key: str, value: bytes) -> None:
        return None


def cache_key(endpoint: str, bucket: str, shard: ObjectInfo) -> str:
    ident = json.dumps([FORMAT, endpoint, bucket, shard.key, shard.size, shard.etag])
    return "shard-index:" + hashlib.sha256(ident.encode()).hexdigest()


def encode(entries: list[Entry]) -> bytes:
    return zlib.compress(json.dumps(entries, separators=(",", ":")).encode(), 6)


def decode(blob: bytes, size: int) -> list[Entry] | None:
    """The entries, or None for anything that is not a well-formed index of ``size`` bytes."""
    try:
        raw = json.loads(zlib.decompress(blob))
        entries = [
            (int(o), int(n), str(k), None if lab is None else int(lab)) for o, n, k, lab in raw
        ]
    except (zlib.error, ValueError, TypeError):
        return None
    if any(o < 0 or n < 0 or o + n > size for o, n, _, _ in entries):
        return None
    return entries


def shard_entries(
    store: ObjectStore, bucket: str, shard: ObjectInfo, cache: IndexCache
) -> list[Entry]:
    """The shard's samples, from the cache when another process indexed it already."""
    key = cache_key(store.endpoint, bucket, shard)
    cached = cache.get(key)
    if cached is not None:
        entries = decode(cached, shard.size)
        if entries is not None:
            return entries
        log.warning("ignoring a malformed cached index of s3://%s/%s", bucket, shard.key)
    with RangedFile(store, bucket, shard.key, shard.size) as f:
        entries = index_tar(f, shard.key.rsplit("/", 1)[-1])
    cache.put(key, encode(entries))
    return entries
