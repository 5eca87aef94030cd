"""Compiled plans, cached per process, and the resolver from a recipe reference to a plan.

The store is read once per recipe version per process: ``name@N`` and ``sha256:...``
references are immutable (versions are never reused), so once resolved they are answered
from memory, even while Redis is down. A bare ``name`` means "latest", which can change
on any replica, so it asks the store every time (one small read); if the store is down,
the last resolution of that name is used instead, with a warning, so training jobs keep
running through a Redis outage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from augsvc.engine import Plan, compile_plan
from augsvc.errors import StoreUnavailable
from augsvc.recipes import Recipe, RecipeRef, digest, parse_recipe, parse_ref, stored_recipe
from augsvc.service.lru import LRU
from augsvc.store import RecipeStore, StoredRecipe

log = logging.getLogger("augsvc.service")


class PlanCache:
    """Compiled plans by recipe digest (``settings.plan_cache_size`` of them)."""

    def __init__(
        self,
        capacity: int,
        on_hit: Callable[[], None] = lambda: None,
        on_miss: Callable[[], None] = lambda: None,
    ) -> None:
        self._plans: LRU[str, Plan] = LRU(capacity)
        self._on_hit = on_hit
        self._on_miss = on_miss

    def cached(self, recipe_digest: str) -> Plan | None:
        """The plan for a digest if compiled already (counts a hit; a miss is counted
        by the :meth:`plan_for` that follows)."""
        plan = self._plans.get(recipe_digest)
        if plan is not None:
            self._on_hit()
        return plan

    def plan_for(self, recipe: Recipe) -> Plan:
        plan = self.cached(digest(recipe))
        if plan is not None:
            return plan
        self._on_miss()
        plan = compile_plan(recipe)
        self._plans.put(plan.digest, plan)
        return plan


@dataclass(frozen=True)
class Resolved:
    """A plan and where it came from (name/version are None for inline recipes)."""

    plan: Plan
    name: str | None = None
    version: int | None = None

    @property
    def digest(self) -> str:
        return self.plan.digest


async def lookup(store: RecipeStore, ref: RecipeRef) -> StoredRecipe:
    """Read the stored version a reference names (RecipeNotFound when none)."""
    if ref.digest is not None:
        return await store.get_by_digest(ref.digest)
    assert ref.name is not None
    return await store.get(ref.name, ref.version)


class RecipeResolver:
    """``ref text -> Resolved``, reading the store as little as the references allow."""

    def __init__(self, store: RecipeStore, plans: PlanCache, capacity: int) -> None:
        self._store = store
        self._plans = plans
        self._pinned: LRU[str, Resolved] = LRU(capacity)  # "name@N" / "sha256:..." -> plan
        self._latest: LRU[str, Resolved] = LRU(capacity)  # "name" -> last resolution

    async def resolve(self, text: str) -> Resolved:
        ref = parse_ref(text)
        key = str(ref)
        if ref.digest is not None or ref.version is not None:
            cached = self._pinned.get(key)
            if cached is not None:
                return cached
            resolved = self._compile(await lookup(self._store, ref))
            self._pinned.put(key, resolved)
            return resolved
        try:
            stored = await lookup(self._store, ref)
        except StoreUnavailable:
            fallback = self._latest.get(key)
            if fallback is None:
                raise
            log.warning(
                "recipe store unavailable; serving %r as its last known version %s (%s)",
                key, fallback.version, fallback.digest,
            )  # fmt: skip
            return fallback
        resolved = self._compile(stored)
        self._latest.put(key, resolved)
        self._pinned.put(f"{stored.name}@{stored.version}", resolved)
        return resolved

    def inline(self, document: object) -> Resolved:
        """A one-off recipe sent with the request: validated and compiled, never stored."""
        return Resolved(self._plans.plan_for(parse_recipe(document)))

    def _compile(self, stored: StoredRecipe) -> Resolved:
        plan = self._plans.cached(stored.digest) or self._plans.plan_for(
            stored_recipe(stored.document)
        )
        return Resolved(plan=plan, name=stored.name, version=stored.version)
