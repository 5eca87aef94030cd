"""One suite for both recipe stores, plus Redis-only failure tests."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from augsvc.config import Settings
from augsvc.errors import InvalidReference, PreconditionFailed, RecipeNotFound, StoreUnavailable
from augsvc.store import (
    MemoryRecipeStore,
    RecipeStore,
    RedisRecipeStore,
    StoredRecipe,
    open_recipe_store,
)

pytestmark = pytest.mark.timeout(60)


def recipe(n: int = 0) -> tuple[dict[str, Any], str]:
    """A distinct document per ``n`` with its digest (the store treats both as opaque)."""
    document = {"ops": [{"op": "rotate", "degrees": [-n, n], "p": 0.5}], "output": {"n": n}}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return document, "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@pytest.fixture(params=["memory", "redis"])
def store(
    request: pytest.FixtureRequest, aio: asyncio.Runner, redis_prefix: str
) -> Iterator[RecipeStore]:
    """Each implementation, used only inside ``aio`` (its loop owns the connections)."""
    if request.param == "memory":
        instance: RecipeStore = MemoryRecipeStore()
    else:
        server = request.getfixturevalue("redis_server")
        instance = RedisRecipeStore.from_url(server.url, redis_prefix, timeout_s=1.0)
    yield instance
    aio.run(instance.close())


def test_put_creates_version_1_and_same_content_is_idempotent(aio, store) -> None:
    document, digest = recipe(1)
    first, created = aio.run(store.put("flip", document, digest))
    assert created
    assert (first.name, first.version, first.digest, first.document) == (
        "flip",
        1,
        digest,
        document,
    )
    assert abs(first.created_at - time.time()) < 60

    again, created = aio.run(store.put("flip", document, digest))
    assert not created
    assert again == first


def test_changed_content_gets_next_version_and_get_reads_any(aio, store) -> None:
    (doc1, digest1), (doc2, digest2) = recipe(1), recipe(2)
    aio.run(store.put("crop", doc1, digest1))
    second, created = aio.run(store.put("crop", doc2, digest2))
    assert created and second.version == 2

    assert aio.run(store.get("crop")) == second
    assert aio.run(store.get("crop", 1)).document == doc1
    assert aio.run(store.get("crop", 2)).digest == digest2
    # Going back to old content is a change too: a new version, not a rewind.
    third, created = aio.run(store.put("crop", doc1, digest1))
    assert created and third.version == 3


def test_missing_recipe_and_version(aio, store) -> None:
    with pytest.raises(RecipeNotFound, match="nope"):
        aio.run(store.get("nope"))
    aio.run(store.put("one", *recipe(1)))
    with pytest.raises(RecipeNotFound, match="version 7"):
        aio.run(store.get("one", 7))
    with pytest.raises(RecipeNotFound):
        aio.run(store.versions("nope"))
    with pytest.raises(RecipeNotFound):
        aio.run(store.delete("nope"))
    with pytest.raises(RecipeNotFound):
        aio.run(store.get_by_digest(recipe(99)[1]))


def test_returned_documents_are_copies(aio, store) -> None:
    document, digest = recipe(1)
    stored, _ = aio.run(store.put("copy", document, digest))
    stored.document["ops"].clear()
    document["ops"].clear()
    assert aio.run(store.get("copy")).document == recipe(1)[0]


def test_get_by_digest(aio, store) -> None:
    (doc1, digest1), (doc2, digest2) = recipe(1), recipe(2)
    aio.run(store.put("b-name", doc1, digest1))
    aio.run(store.put("b-name", doc2, digest2))
    aio.run(store.put("a-name", doc2, digest2))
    assert aio.run(store.get_by_digest(digest1)).version == 1
    # Several holders: the first by (name, version), the same in both stores.
    found = aio.run(store.get_by_digest(digest2))
    assert (found.name, found.version, found.document) == ("a-name", 1, doc2)


def test_list_gives_latest_of_each_name_sorted(aio, store) -> None:
    assert aio.run(store.list()) == []
    aio.run(store.put("zeta", *recipe(1)))
    aio.run(store.put("alpha", *recipe(2)))
    aio.run(store.put("alpha", *recipe(3)))
    aio.run(store.put("mid.v2_x-y", *recipe(4)))
    listed = aio.run(store.list())
    assert [(r.name, r.version) for r in listed] == [("alpha", 2), ("mid.v2_x-y", 1), ("zeta", 1)]
    assert listed[0].digest == recipe(3)[1]
    assert all(isinstance(r, StoredRecipe) for r in listed)


def test_versions_ascending(aio, store) -> None:
    for n in range(1, 4):
        aio.run(store.put("many", *recipe(n)))
    versions = aio.run(store.versions("many"))
    assert [(v.version, v.digest) for v in versions] == [(n, recipe(n)[1]) for n in range(1, 4)]


def test_delete_removes_every_version_and_versions_are_not_reused(aio, store) -> None:
    aio.run(store.put("gone", *recipe(1)))
    aio.run(store.put("gone", *recipe(2)))
    assert aio.run(store.delete("gone")) == 2
    with pytest.raises(RecipeNotFound):
        aio.run(store.get("gone"))
    with pytest.raises(RecipeNotFound):
        aio.run(store.get("gone", 1))
    with pytest.raises(RecipeNotFound):
        aio.run(store.get_by_digest(recipe(1)[1]))
    assert aio.run(store.list()) == []
    # A PUT after DELETE continues the numbering: gone@1 never means another document.
    again, created = aio.run(store.put("gone", *recipe(1)))
    assert created and again.version == 3
    assert [v.version for v in aio.run(store.versions("gone"))] == [3]


def test_digest_stays_resolvable_through_another_name(aio, store) -> None:
    document, digest = recipe(5)
    aio.run(store.put("first", document, digest))
    aio.run(store.put("second", *recipe(6)))
    aio.run(store.put("second", document, digest))
    aio.run(store.delete("first"))
    found = aio.run(store.get_by_digest(digest))
    assert (found.name, found.version, found.document) == ("second", 2, document)


def test_if_match(aio, store) -> None:
    (doc1, digest1), (doc2, digest2), (doc3, digest3) = recipe(1), recipe(2), recipe(3)
    with pytest.raises(PreconditionFailed):
        aio.run(store.put("cond", doc1, digest1, if_match="*"))
    with pytest.raises(PreconditionFailed):
        aio.run(store.put("cond", doc1, digest1, if_match=digest1))
    aio.run(store.put("cond", doc1, digest1))

    second, created = aio.run(store.put("cond", doc2, digest2, if_match=digest1))
    assert created and second.version == 2
    with pytest.raises(PreconditionFailed, match=digest2) as stale:
        aio.run(store.put("cond", doc3, digest3, if_match=digest1))
    assert stale.value.status == 412
    third, created = aio.run(store.put("cond", doc3, digest3, if_match="*"))
    assert created and third.version == 3
    # The latest's content under a stale If-Match is still stale: 412, nothing stored.
    with pytest.raises(PreconditionFailed, match=digest3):
        aio.run(store.put("cond", doc3, digest3, if_match=digest2))
    # Under the latest's own digest (or *), the same content is that version, unchanged.
    for match in (digest3, "*"):
        again, created = aio.run(store.put("cond", doc3, digest3, if_match=match))
        assert not created and again == third
    assert [v.version for v in aio.run(store.versions("cond"))] == [1, 2, 3]


@pytest.mark.parametrize(
    "name", ["", "Upper", "-lead", ".lead", "has space", "a:b", "a/b", "x" * 65, "é", "a\n"]
)
def test_bad_names_rejected(aio, store, name: str) -> None:
    document, digest = recipe(1)
    with pytest.raises(InvalidReference):
        aio.run(store.put(name, document, digest))
    with pytest.raises(InvalidReference):
        aio.run(store.get(name))
    with pytest.raises(InvalidReference):
        aio.run(store.delete(name))


def test_longest_name_and_bad_digest_or_version(aio, store) -> None:
    document, digest = recipe(1)
    assert aio.run(store.put("x" * 64, document, digest))[0].version == 1
    for bad in ["", "sha256:abc", digest.upper(), "md5:" + "0" * 64]:
        with pytest.raises(InvalidReference):
            aio.run(store.put("ok", document, bad))
        with pytest.raises(InvalidReference):
            aio.run(store.get_by_digest(bad))
    for version in [0, -1, True]:
        with pytest.raises(InvalidReference):
            aio.run(store.get("ok", version))


def test_concurrent_puts_get_distinct_versions(aio, store) -> None:
    async def put_all() -> list[tuple[StoredRecipe, bool]]:
        return await asyncio.gather(*(store.put("race", *recipe(n)) for n in range(20)))

    results = aio.run(put_all())
    assert all(created for _, created in results)
    assert sorted(stored.version for stored, _ in results) == list(range(1, 21))
    versions = aio.run(store.versions("race"))
    assert {v.digest for v in versions} == {recipe(n)[1] for n in range(20)}
    assert aio.run(store.get("race")).version == 20


def test_ping(aio, store) -> None:
    aio.run(store.ping())


# --- Redis only --------------------------------------------------------------------------


def test_open_recipe_store_follows_settings(aio, redis_server, redis_prefix) -> None:
    assert isinstance(open_recipe_store(Settings(redis_url=None)), MemoryRecipeStore)
    store = open_recipe_store(Settings(redis_url=redis_server.url, redis_prefix=redis_prefix))
    assert isinstance(store, RedisRecipeStore)
    aio.run(store.ping())
    aio.run(store.close())


def test_redis_keys_stay_under_the_prefix(aio, redis_server, redis_prefix) -> None:
    async def scan(client: Redis) -> set[str]:
        return {key async for key in client.scan_iter(match="*", count=1000)}

    async def main() -> tuple[set[str], set[str]]:
        client = Redis.from_url(redis_server.url, decode_responses=True)
        store = RedisRecipeStore.from_url(redis_server.url, redis_prefix)
        try:
            before = await scan(client)
            for n in range(3):
                await store.put(f"k{n}", *recipe(n))
            await store.put("k0", *recipe(9))
            await store.delete("k1")
            return before, await scan(client)
        finally:
            await store.close()
            await client.aclose()

    before, after = aio.run(main())
    new_keys = after - before
    assert new_keys and all(key.startswith(redis_prefix + ":") for key in new_keys)


def test_redis_outage_becomes_store_unavailable_and_heals(aio, redis_server, redis_prefix):
    store = RedisRecipeStore.from_url(redis_server.url, redis_prefix, timeout_s=1.0)
    url_with_secret = f"redis://:hunter2@127.0.0.1:{redis_server.port}/0"
    secret_store = RedisRecipeStore.from_url(url_with_secret, redis_prefix, timeout_s=1.0)
    document, digest = recipe(1)
    try:
        aio.run(store.put("outage", document, digest))  # a pooled connection now exists
        redis_server.stop()
        calls = [
            store.ping,
            lambda: store.put("outage", *recipe(2)),
            lambda: store.get("outage"),
            lambda: store.get("outage", 1),
            lambda: store.get_by_digest(digest),
            store.list,
            lambda: store.versions("outage"),
            lambda: store.delete("outage"),
            secret_store.ping,
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match=r"^recipe store unreachable: ") as failure:
                aio.run(call())
            assert time.monotonic() - started < 5
            assert failure.value.status == 503
            assert "hunter2" not in failure.value.detail and "redis://" not in failure.value.detail
    finally:
        redis_server.start()

    # Same store object: the dead pooled connections are replaced without help. Nothing was
    # persisted, so the data is gone, but reads and writes work again.
    aio.run(store.ping())
    with pytest.raises(RecipeNotFound):
        aio.run(store.get("outage"))
    stored, created = aio.run(store.put("outage", document, digest))
    assert created and aio.run(store.get("outage")) == stored
    aio.run(store.close())
    aio.run(secret_store.close())


def test_redis_restart_between_calls_is_invisible(aio, redis_server, redis_prefix) -> None:
    """A restart with no failing call in between: the stale pooled connection is replaced."""
    store = RedisRecipeStore.from_url(redis_server.url, redis_prefix, timeout_s=1.0)
    try:
        aio.run(store.put("restart", *recipe(1)))
        redis_server.stop()
        redis_server.start()
        stored, created = aio.run(store.put("restart", *recipe(2)))
        assert created and aio.run(store.get("restart")) == stored
    finally:
        redis_server.start()
        aio.run(store.close())
