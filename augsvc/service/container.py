"""Everything one app instance holds, opened together and closed together.

``create_app(settings)`` opens a :class:`Services` in its lifespan and the routes get
each part through a typed dependency, so two apps in one process never share a store,
a cache or a metrics registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from augsvc.config import Settings
from augsvc.pixel_budget import PixelBudget
from augsvc.service.executor import EngineExecutor
from augsvc.service.metrics import Metrics
from augsvc.service.resolver import PlanCache, RecipeResolver
from augsvc.service.sources import SourceCache, object_sources
from augsvc.service.stream_producer import StreamPools
from augsvc.store import (
    DatasetStore,
    RecipeStore,
    RedisRecipeStore,
    open_dataset_store,
    open_recipe_store,
)


@dataclass
class Services:
    settings: Settings
    device: torch.device
    metrics: Metrics
    store: RecipeStore
    datasets: DatasetStore
    resolver: RecipeResolver
    executor: EngineExecutor
    sources: SourceCache
    streams: StreamPools
    pixel_budget: PixelBudget

    async def close(self) -> None:
        self.streams.shutdown()
        self.executor.shutdown()
        self.sources.close()
        await self.store.close()


def open_services(settings: Settings, device: torch.device, metrics: Metrics) -> Services:
    store = open_recipe_store(settings)
    plans = PlanCache(
        settings.plan_cache_size,
        on_hit=metrics.plan_cache_hits.inc,
        on_miss=metrics.plan_cache_misses.inc,
    )
    sources = SourceCache(settings.data_root_paths, objects=object_sources(settings))
    if isinstance(store, RedisRecipeStore):  # replicas share their shard indexes
        sources.share_indexes(store.client, settings.redis_prefix)
    return Services(
        settings=settings,
        device=device,
        metrics=metrics,
        store=store,
        datasets=open_dataset_store(settings, store),
        resolver=RecipeResolver(store, plans, settings.plan_cache_size),
        executor=EngineExecutor(settings.engine_threads, settings.queue_depth, metrics),
        sources=sources,
        streams=StreamPools(settings.max_streams),
        pixel_budget=PixelBudget(
            settings.max_request_pixels,
            settings.max_inflight_pixels,
            on_change=metrics.pixels_held.set,
            on_reject=metrics.pixels_rejected.inc,
        ),
    )
