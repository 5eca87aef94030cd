"""The bookkeeping of ``augment_iter``, shared by both clients.

A local dataset (anything with ``len`` and integer indexing whose items are images or
``(image, label)`` pairs) is cut into consecutive batches; batch ``b`` covers positions
``[b * batch_size, ...)`` and is sent with ``offset`` = its first position, so every
sample's key is its dataset position and the result does not depend on ``batch_size``
or on how many requests were in flight.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .batches import AugmentedBatch
from .wire import Output, convert


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


def load_batch(dataset: Sequence[Any], start: int, stop: int) -> tuple[list[Any], Any]:
    """The images of ``dataset[start:stop]`` and their labels (None when unlabelled).

    Integer labels become an int64 array; other labels (strings, boxes) stay a list.
    """
    images, labels = [], []
    for i in range(start, stop):
        item = dataset[i]
        if isinstance(item, tuple) and len(item) == 2:
            images.append(item[0])
            labels.append(item[1])
        else:
            images.append(item)
    if not labels:
        return images, None
    if len(labels) != len(images):
        raise ValueError(f"items {start}..{stop - 1} mix labelled and unlabelled samples")
    if all(_is_label(v) for v in labels):
        return images, np.asarray([int(v) for v in labels], dtype=np.int64)
    return images, labels


def with_labels(batch: AugmentedBatch, labels: Any, output: Output) -> AugmentedBatch:
    if labels is None:
        return batch
    if isinstance(labels, np.ndarray):
        labels = convert(labels, output)
    return dataclasses.replace(batch, labels=labels)


def choose_seed(seed: int | None) -> int:
    """The seed for a whole iteration: the caller's, else one random 63-bit seed."""
    return secrets.randbits(63) if seed is None else seed
