"""The bookkeeping of ``augment_iter``, shared by both clients.

A local dataset whose items are images or ``(image, label)`` pairs is cut into
consecutive batches; batch ``b`` covers positions ``[b * batch_size, ...)`` and is sent
with ``offset`` = its first position, so every sample's key is its position in the
dataset and the result does not depend on ``batch_size`` or on how many requests were
in flight.

Two kinds of dataset: *indexed* ones (``len`` and integer indexing: lists, map-style
torch Datasets) are read batch by batch in the worker that sends the batch, so reading
overlaps too; anything else that can be iterated (generators, torch IterableDatasets,
files read line by line) is read in order by the caller, ``batch_size`` items at a time,
and positions are counted as items arrive. The same items in the same order give the
same keys, and so the same bytes, either way.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .arrays import convert
from .batches import AugmentedBatch


def batch_bounds(length: int, batch_size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each batch, the last one possibly short."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    for start in range(0, length, batch_size):
        yield start, min(start + batch_size, length)


def _is_label(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | np.integer):
        return True
    return getattr(value, "ndim", None) == 0  # a 0-d numpy array or torch tensor


def split_items(items: Sequence[Any], start: int) -> tuple[list[Any], Any]:
    """The images of ``items`` (positions ``start``, ...) and their labels (None when
    unlabelled). Integer labels become an int64 array; others (strings, boxes) a list."""
    images, labels = [], []
    for item in items:
        if isinstance(item, tuple) and len(item) == 2:
            images.append(item[0])
            labels.append(item[1])
        else:
            images.append(item)
    if not labels:
        return images, None
    if len(labels) != len(images):
        stop = start + len(items) - 1
        raise ValueError(f"items {start}..{stop} mix labelled and unlabelled samples")
    if all(_is_label(v) for v in labels):
        return images, np.asarray([int(v) for v in labels], dtype=np.int64)
    return images, labels


def load_batch(dataset: Sequence[Any], start: int, stop: int) -> tuple[list[Any], Any]:
    """The images of ``dataset[start:stop]`` and their labels (see :func:`split_items`)."""
    return split_items([dataset[i] for i in range(start, stop)], start)


def is_indexed(dataset: Any) -> bool:
    """Whether ``dataset`` is read by position (``len`` and ``__getitem__``) rather than
    iterated. A torch IterableDataset inherits ``__getitem__`` from Dataset without
    supporting it, so it counts as iterable (found by name: torch is not imported)."""
    if any(cls.__name__ == "IterableDataset" for cls in type(dataset).__mro__):
        return False
    return hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")


def chunks(items: Iterable[Any], batch_size: int) -> Iterator[tuple[int, list[Any]]]:
    """``(start, items)`` of consecutive batches of an iterable, read as they are asked
    for (the last one possibly short)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    iterator = iter(items)
    start = 0
    while chunk := list(itertools.islice(iterator, batch_size)):
        yield start, chunk
        start += len(chunk)


def with_labels(batch: AugmentedBatch, labels: Any, output: str) -> AugmentedBatch:
    if labels is None:
        return batch
    if isinstance(labels, np.ndarray) and output == "torch":
        labels = convert(labels, output)
    return dataclasses.replace(batch, labels=labels)


def choose_seed(seed: int | None) -> int:
    """The seed for a whole iteration: the caller's, else one random 63-bit seed."""
    return secrets.randbits(63) if seed is None else seed
