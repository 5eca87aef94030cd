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
- ``close``: give back what a stream view started;
- ``check``: whether the source can still be read, cheaply (its folder, its shards),
  so a listing reports a dataset whose files went away.

A read that fails (a file deleted, replaced by a folder or a pipe, a shard rewritten)
raises :class:`~augsvc.errors.SampleUnreadable` naming the sample's index and its path
in the dataset, and a sample's name (what decode errors quote) is that same
``path (sample i)``, so every failure of a stream says which file to look at.

The openers live in the modules of their sources and are found through a table of
kind -> opener: a kind without one is a bug (the spec admits it, nobody opens it), and
fails as :class:`UnknownSourceKind` instead of being read as some other kind.
"""

from __future__ import annotations

import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

import numpy as np

from augsvc.datasets.spec import DatasetSpec
from augsvc.errors import SampleUnreadable
from augsvc.targets.types import ImageTargets

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_SAMPLES = 2**32
#: Largest file read as one sample: far above any image an upload may carry (a request
#: is 64 MiB by default), far below what would let one replaced file exhaust memory.
MAX_SAMPLE_BYTES = 1024**3
#: What a stale index should make its reader do.
REGISTER_AGAIN = "the dataset changed since it was registered: fix it or register it again (PUT)"


@dataclass(frozen=True)
class SourceLimits:
    """The limits on uploaded data that data read from a dataset meets too, checked when
    it is indexed (declared image sizes in annotations); the service passes its
    settings, the default is AUGSVC_MAX_IMAGE_PIXELS's."""

    max_image_pixels: int = 40_000_000


def sample_name(index: int, relative: str) -> str:
    """How errors name a sample: its path in the dataset and its index."""
    return f"{relative[:200]} (sample {index})"


def unreadable(index: int, relative: str, reason: str) -> SampleUnreadable:
    """The error for sample ``index`` at ``relative`` that cannot be read."""
    shown = relative[:200]
    return SampleUnreadable(
        f"sample {index} ({shown!r}) cannot be read: {reason}; {REGISTER_AGAIN}"
    )


def read_file(
    path: Path, index: int, relative: str, start: int = 0, size: int | None = None
) -> bytes:
    """The bytes of a regular file (``size`` of them from ``start``, or all), or
    SampleUnreadable naming the sample. The file is opened without blocking and checked
    to be a regular file before a byte is read: a folder or a named pipe put where an
    image was is refused, never read (a pipe would block its reader for ever)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise unreadable(index, relative, exc.strerror or type(exc).__name__) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise unreadable(index, relative, "it is not a regular file")
        length = info.st_size - start if size is None else size
        if start + length > info.st_size:
            reason = f"the file is {info.st_size} bytes, shorter than indexed"
            raise unreadable(index, relative, reason)
        if length > MAX_SAMPLE_BYTES:
            reason = f"{length} bytes, more than a sample may be ({MAX_SAMPLE_BYTES})"
            raise unreadable(index, relative, reason)
        return _read_exactly(fd, start, length, index, relative)
    except OSError as exc:
        raise unreadable(index, relative, exc.strerror or type(exc).__name__) from None
    finally:
        os.close(fd)


def _read_exactly(fd: int, start: int, length: int, index: int, relative: str) -> bytes:
    chunks = []
    while length > 0:
        chunk = os.pread(fd, min(length, 64 * 1024**2), start)
        if not chunk:
            raise unreadable(index, relative, "the file ended early (truncated while being read)")
        chunks.append(chunk)
        start += len(chunk)
        length -= len(chunk)
    return b"".join(chunks)


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

    def check(self) -> None:  # noqa: B027  a hook: a source in object storage checks nothing
        """SampleUnreadable when the source visibly can no longer be read (its folder gone,
        a shard rewritten). Cheap (a few system calls, never a walk of every file): it
        runs whenever a registration is listed or a stream starts."""


def opener_for(openers: Mapping[str, Opener], spec: DatasetSpec, where: str) -> Opener:
    """The opener of ``spec.kind`` from ``openers``; UnknownSourceKind when it has none."""
    try:
        return openers[spec.kind]
    except KeyError:
        raise UnknownSourceKind(
            f"no {where} opener for dataset kind {spec.kind!r} (known: {sorted(openers)})"
        ) from None
