"""Everything one app instance holds, opened together and closed together.

``create_app(settings)`` opens a :class:`Services` in its lifespan and the routes get
each part through a typed dependency, so two apps in one process never share a store,
a cache or a metrics registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

from augsvc.config import Settings
from augsvc.datasets.source_base import SourceLimits
from augsvc.pipeline import MemoryBudget
from augsvc.service.device_threads import (
    bind_thread,
    engine_threads,
    on_every_thread,
    warm_up_batch,
)
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
    memory_budget: MemoryBudget

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
    sources = SourceCache(
        settings.data_root_paths,
        objects=object_sources(settings),
        limits=SourceLimits(max_image_pixels=settings.max_image_pixels),
    )
    if isinstance(store, RedisRecipeStore):  # replicas share their shard indexes
        sources.share_indexes(store.client, settings.redis_prefix)
    bind = partial(bind_thread, device)
    workers = engine_threads(settings.engine_threads, device)
    executor = EngineExecutor(workers, settings.queue_depth, metrics, initializer=bind)
    if device.type == "cuda":  # the first request should not pay for CUDA's start-up
        on_every_thread(executor.pool, workers, partial(warm_up_batch, device))
    return Services(
        settings=settings,
        device=device,
        metrics=metrics,
        store=store,
        datasets=open_dataset_store(settings, store),
        resolver=RecipeResolver(store, plans, settings.plan_cache_size),
        executor=executor,
        sources=sources,
        streams=StreamPools(settings.max_streams, initializer=bind),
        memory_budget=MemoryBudget(
            settings.max_job_bytes,
            settings.max_inflight_bytes,
            on_change=metrics.memory_held.set,
            on_reject=metrics.memory_rejected.inc,
        ),
    )
