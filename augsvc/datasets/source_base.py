"""What every dataset source is: the base class, its optional capabilities, and how a
kind finds the function that opens it.

A stream knows a source only through :class:`Source`. What only some sources can do is
declared on the base class with a default that is right for a source without it, so
a caller asks the source instead of probing for attributes:

- ``has_targets`` / ``read_targets``: samples carry boxes, keypoints or masks (COCO,
  paired folders);
- ``labelled``: each sample has a class label, known from the index without a read;
- ``read_many``: a batch read at once (object storage fetches it concurrently; a
  local source reads one sample after another);
- ``for_stream``: ranged reads worth starting ahead (object storage prefetches the
  next batch while this one renders); a local source is its own stream view;
- ``close``: give back what a stream view started.

The openers live in the modules of their sources and are found through a table of
kind -> opener: a kind without one is a bug (the spec admits it, nobody opens it), and
fails as :class:`UnknownSourceKind` instead of being read as some other kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar, TypeVar

import numpy as np

from augsvc.datasets.spec import DatasetSpec
from augsvc.targets.types import ImageTargets

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_SAMPLES = 2**32

#: (encoded image bytes, label or None, a name for error messages)
Sample = tuple[bytes, int | None, str]

Opener = TypeVar("Opener")


class UnknownSourceKind(LookupError):
    """A dataset kind with no opener where it was asked for. The spec's validation lets
    only known kinds through, so this is a programming error, never a user's."""


class Source(ABC):
    """A dataset indexed once, then read by sample index in O(1)."""

    spec: DatasetSpec
    classes: list[str] | None
    #: Whether ``read_targets`` gives each sample's targets.
    has_targets: ClassVar[bool] = False

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def read(self, index: int) -> Sample: ...

    @property
    @abstractmethod
    def labelled(self) -> bool:
        """Whether every sample carries a label, known from the index (no read). A
        source with targets has category ids per box, not a label per image."""

    def read_targets(self, index: int, image_hw: tuple[int, int]) -> ImageTargets:
        """Sample ``index``'s targets in source pixels (only where ``has_targets``).
        ``image_hw`` is its image's (height, width) as its header says it decodes:
        targets that declare another size are refused before anything is rasterised or
        decoded at the size they declare."""
        raise TypeError(f"{type(self).__name__} has no targets (sample {index})")

    def read_many(self, indices: Sequence[int]) -> list[Sample]:
        """A batch of samples, in the order asked."""
        return [self.read(int(i)) for i in indices]

    def for_stream(self, order: np.ndarray, batches: list[np.ndarray]) -> Source:
        """The view one stream reads through, told the epoch's order and batches."""
        return self

    def close(self) -> None:  # noqa: B027  a hook: most sources start nothing to cancel
        """Cancel whatever a stream view started and nobody will read."""


def opener_for(openers: Mapping[str, Opener], spec: DatasetSpec, where: str) -> Opener:
    """The opener of ``spec.kind`` from ``openers``; UnknownSourceKind when it has none."""
    try:
        return openers[spec.kind]
    except KeyError:
        raise UnknownSourceKind(
            f"no {where} opener for dataset kind {spec.kind!r} (known: {sorted(openers)})"
        ) from None
