"""Where recipes live: Redis when ``AUGSVC_REDIS_URL`` is set, else in this process."""

from __future__ import annotations

from augsvc.config import Settings
from augsvc.store.base import RecipeStore, StoredRecipe
from augsvc.store.datasets import (
    DatasetStore,
    MemoryDatasetStore,
    RedisDatasetStore,
    StoredDataset,
)
from augsvc.store.memory import MemoryRecipeStore
from augsvc.store.redis import RedisRecipeStore

__all__ = [
    "DatasetStore",
    "MemoryDatasetStore",
    "MemoryRecipeStore",
    "RecipeStore",
    "RedisDatasetStore",
    "RedisRecipeStore",
    "StoredDataset",
    "StoredRecipe",
    "open_dataset_store",
    "open_recipe_store",
]


def open_recipe_store(settings: Settings) -> RecipeStore:
    """The store the settings ask for. Nothing connects yet: call ``ping()`` to check."""
    if settings.redis_url is not None:
        return RedisRecipeStore.from_url(
            settings.redis_url.get_secret_value(), settings.redis_prefix
        )
    return MemoryRecipeStore()


def open_dataset_store(settings: Settings, recipes: RecipeStore) -> DatasetStore:
    """Datasets live beside the recipes: in the same Redis (sharing its connection pool)
    or in this process."""
    if isinstance(recipes, RedisRecipeStore):
        return RedisDatasetStore(recipes.client, settings.redis_prefix)
    return MemoryDatasetStore()
