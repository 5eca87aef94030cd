"""Dataset sources in object storage: image prefixes laid out like class folders, and
WebDataset shards read by byte ranges.

They index exactly as their local twins do (``FolderSource``, ``TarSource``): the same
files in the same order, the same labels. Listing order is never trusted: keys are
sorted by their path segments, the order a local folder walk gives. So a dataset copied
to a bucket has the same size, the same sample at every index, and therefore the same
epoch order, ranks and resume positions as on disk: its stream is byte-identical.

Reads are ranged GETs on the process's :class:`ObjectStore`; a stream reads its next
batch while the current one renders (``Source.for_stream``).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from augsvc.datasets.object_store import ObjectInfo, ObjectStore, Read, gather
from augsvc.datasets.object_urls import ObjectUrl, check_allowed, parse_object_url
from augsvc.datasets.shard_index import IndexCache, NoIndexCache, shard_entries
from augsvc.datasets.source_base import (
    IMAGE_SUFFIXES,
    MAX_SAMPLES,
    Sample,
    Source,
    opener_for,
    sample_name,
)
from augsvc.datasets.spec import DatasetSpec
from augsvc.errors import ObjectNotFound, ObjectStoreUnavailable, ValidationFailed


def _parts(key: str) -> tuple[str, ...]:
    return tuple(key.split("/"))


def _is_image(key: str) -> bool:
    return not key.endswith("/") and PurePosixPath(key).suffix.lower() in IMAGE_SUFFIXES


class RangedSource(Source):
    """A source in object storage: each sample is one GET of an object or of a byte
    range of one, so a batch is fetched concurrently and the next one ahead."""

    store: ObjectStore

    @abstractmethod
    def location(self, index: int) -> Read:
        """Where sample ``index``'s bytes are: (bucket, key, first byte, end or None)."""

    @abstractmethod
    def describe(self, index: int, data: bytes) -> Sample:
        """Sample ``index`` from its fetched bytes."""

    @abstractmethod
    def shown(self, index: int) -> str:
        """Sample ``index``'s path as errors name it (its key; a shard's key and member)."""

    def read(self, index: int) -> Sample:
        try:
            data = self.store.get(*self.location(index))
        except ObjectNotFound as err:
            raise self._gone(index, err) from None
        return self.describe(index, data)

    def _gone(self, index: int, err: ObjectNotFound) -> ObjectNotFound:
        return ObjectNotFound(f"sample {index} ({self.shown(index)!r}): {err.detail}")

    def read_many(self, indices: Sequence[int]) -> list[Sample]:
        futures = self.store.submit_many([self.location(int(i)) for i in indices])
        return self.described(indices, futures)

    def described(self, indices: Sequence[int], futures: Sequence[Future[bytes]]) -> list[Sample]:
        """The samples of the reads ``futures`` of ``indices``; an object gone is
        ObjectNotFound naming the sample's index and key."""
        try:
            data = gather(futures)
        except ObjectNotFound as err:
            for i, f in zip(indices, futures, strict=True):
                if f.done() and not f.cancelled() and isinstance(f.exception(), ObjectNotFound):
                    raise self._gone(int(i), err) from None
            raise
        return [self.describe(int(i), d) for i, d in zip(indices, data, strict=True)]

    def for_stream(self, order: np.ndarray, batches: list[np.ndarray]) -> Source:
        return PrefetchingSource(self, order, batches)


@dataclass
class ObjectFolderSource(RangedSource):
    """Images under a prefix; the first path segment below it is the class, when there are
    segments (a flat prefix has no labels), as ImageFolder reads class folders."""

    spec: DatasetSpec
    store: ObjectStore
    bucket: str
    keys: list[str]
    labels: list[int] | None
    classes: list[str] | None

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def location(self, index: int) -> Read:
        return (self.bucket, self.keys[index], None, None)

    def shown(self, index: int) -> str:
        return self.keys[index]

    def describe(self, index: int, data: bytes) -> Sample:
        label = None if self.labels is None else self.labels[index]
        return data, label, sample_name(index, self.shown(index))


@dataclass(frozen=True)
class _RemoteMember:
    shard: str
    offset: int
    size: int
    key: str
    label: int | None


@dataclass
class ObjectTarSource(RangedSource):
    """WebDataset shards; each sample is one ranged GET into its shard."""

    spec: DatasetSpec
    store: ObjectStore
    bucket: str
    members: list[_RemoteMember]
    classes: list[str] | None = None

    def __len__(self) -> int:
        return len(self.members)

    @property
    def labelled(self) -> bool:
        return bool(self.members) and self.members[0].label is not None

    def location(self, index: int) -> Read:
        m = self.members[index]
        return (self.bucket, m.shard, m.offset, m.offset + m.size)

    def shown(self, index: int) -> str:
        m = self.members[index]
        return f"{m.shard}:{m.key}"

    def describe(self, index: int, data: bytes) -> Sample:
        return data, self.members[index].label, sample_name(index, self.shown(index))


@dataclass
class PrefetchingSource(Source):
    """One stream's view of a remote source: when batch k is read, batch k+1's objects
    are requested at once, so they download while batch k decodes and augments.

    Memory stays bounded: one batch of encoded bytes ahead, on top of what the stream's
    frame queue holds; concurrency is the store pool's. Reads of other indices (not the
    next batch in order) are plain reads.
    """

    source: RangedSource
    order: np.ndarray
    batches: list[np.ndarray]
    _next: int = 0
    _pending: tuple[int, list[Future[bytes]]] | None = field(default=None, repr=False)

    @property
    def spec(self) -> DatasetSpec:  # type: ignore[override]
        return self.source.spec

    @property
    def classes(self) -> list[str] | None:  # type: ignore[override]
        return self.source.classes

    @property
    def labelled(self) -> bool:
        return self.source.labelled

    def __len__(self) -> int:
        return len(self.source)

    def read(self, index: int) -> Sample:
        return self.source.read(index)

    def _start(self, batch: int) -> list[Future[bytes]]:
        indices = self.order[self.batches[batch]]
        return self.source.store.submit_many([self.source.location(int(i)) for i in indices])

    def read_many(self, indices: Sequence[int]) -> list[Sample]:
        batch = self._next
        expected = batch < len(self.batches) and np.array_equal(
            self.order[self.batches[batch]], np.asarray(indices)
        )
        if not expected:
            return self.source.read_many(indices)
        if self._pending is not None and self._pending[0] == batch:
            futures = self._pending[1]
        else:
            futures = self._start(batch)
        self._next = batch + 1
        self._pending = None
        if batch + 1 < len(self.batches):
            self._pending = (batch + 1, self._start(batch + 1))
        return self.source.described(indices, futures)

    def for_stream(self, order: np.ndarray, batches: list[np.ndarray]) -> Source:
        return self.source.for_stream(order, batches)

    def close(self) -> None:
        pending, self._pending = self._pending, None
        for f in pending[1] if pending is not None else []:
            f.cancel()


@dataclass
class ObjectSources:
    """What opening an object-store dataset needs: the store, the allow-list and the
    shared index cache. ``store`` is None when no client library is installed."""

    store: ObjectStore | None
    allowed: list[ObjectUrl]
    index_cache: IndexCache = field(default_factory=NoIndexCache)

    def open(self, spec: DatasetSpec) -> RangedSource:
        assert spec.url is not None
        opener = opener_for(REMOTE_OPENERS, spec, "object-store")
        url = parse_object_url(spec.url)
        check_allowed(url, self.allowed)
        if self.store is None:
            raise ObjectStoreUnavailable(
                "object-store datasets need the s3 extra: pip install 'augsvc[s3]'"
            )
        source = opener(spec, self.store, url, self.index_cache)
        if len(source) == 0:
            raise ValidationFailed(f"dataset URL {str(url)!r} holds no images")
        if len(source) >= MAX_SAMPLES:
            raise ValidationFailed(f"dataset {str(url)!r} holds more than {MAX_SAMPLES - 1} images")
        return source


def _plain(relative: str) -> bool:
    """A key a folder could hold: no empty, ``.`` or ``..`` segment. Other keys are left
    out: a server that normalised ``a/../b`` would read outside the allowed prefix."""
    return all(part not in ("", ".", "..") for part in relative.split("/"))


def _listing(store: ObjectStore, url: ObjectUrl) -> list[ObjectInfo]:
    """Everything under the prefix, sorted by path segments; ObjectNotFound when empty."""
    prefix = url.key + "/" if url.key else ""
    found = [o for o in store.list(url.bucket, prefix) if _plain(o.key[len(prefix) :])]
    if not found:
        raise ObjectNotFound(f"{url}: no objects under this prefix")
    return sorted(found, key=lambda o: _parts(o.key))


def _open_folder(
    spec: DatasetSpec, store: ObjectStore, url: ObjectUrl, _cache: IndexCache
) -> ObjectFolderSource:
    """Listed, not indexed: a folder has no shard index to cache."""
    base = len(url.key) + 1 if url.key else 0
    listed = _listing(store, url)
    relative = [(o.key, _parts(o.key[base:])) for o in listed]
    classes = sorted({parts[0] for _, parts in relative if len(parts) > 1})
    if not classes:  # a flat prefix: images without labels
        flat = [key for key, _ in relative if _is_image(key)]
        return ObjectFolderSource(spec, store, url.bucket, flat, None, None)
    label_of = {name: label for label, name in enumerate(classes)}
    keys: list[str] = []
    labels: list[int] = []
    for key, parts in relative:  # sorted by segments: class by class, as a folder walk
        if len(parts) > 1 and _is_image(key):
            keys.append(key)
            labels.append(label_of[parts[0]])
    return ObjectFolderSource(spec, store, url.bucket, keys, labels, classes)


def _shards(store: ObjectStore, url: ObjectUrl) -> list[ObjectInfo]:
    if url.key.endswith(".tar"):
        one = store.head(url.bucket, url.key)
        if one is None:
            raise ObjectNotFound(f"{url}: no such object")
        return [one]
    base = len(url.key) + 1 if url.key else 0
    return [o for o in _listing(store, url) if "/" not in o.key[base:] and o.key.endswith(".tar")]


def _open_shards(
    spec: DatasetSpec, store: ObjectStore, url: ObjectUrl, cache: IndexCache
) -> ObjectTarSource:
    shards = _shards(store, url)
    # Shards are indexed side by side on the store's pool (each reads its own headers).
    indexed = [
        store.pool.submit(shard_entries, store, url.bucket, shard, cache) for shard in shards
    ]
    members: list[_RemoteMember] = []
    for shard, future in zip(shards, indexed, strict=True):
        members += [_RemoteMember(shard.key, *entry) for entry in future.result()]
    has_labels = any(m.label is not None for m in members)
    if has_labels and any(m.label is None for m in members):
        raise ValidationFailed(f"dataset {str(url)!r}: some samples have a .cls label, some not")
    return ObjectTarSource(spec, store, url.bucket, members)


RemoteOpener = Callable[[DatasetSpec, ObjectStore, ObjectUrl, IndexCache], RangedSource]

#: How each kind of dataset in object storage is indexed (coco and paired are read from
#: a server folder only: the spec refuses them with a URL).
REMOTE_OPENERS: dict[str, RemoteOpener] = {"folder": _open_folder, "webdataset": _open_shards}
