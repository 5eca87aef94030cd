"""The sample index of a WebDataset shard, read from its tar headers.

Shared by shards on disk and shards in object storage (through a ranged file), so
both index a shard the same way and give the same samples at the same indices.
"""

from __future__ import annotations

import tarfile
from typing import IO

from augsvc.datasets.source_base import IMAGE_SUFFIXES
from augsvc.errors import ValidationFailed

#: Labels travel as int64 in frames, and one-hot soft targets need far fewer classes.
MAX_LABEL = 2**31


def index_tar(fileobj: IO[bytes], shard_name: str) -> list[tuple[int, int, str, int | None]]:
    """(data offset, size, key, label) of each sample of a WebDataset shard, in archive
    order. Only headers (and .cls labels) are read: the reader seeks past image data."""
    images: dict[str, tarfile.TarInfo] = {}
    labels: dict[str, int] = {}
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                key, _, ext = info.name.partition(".")
                ext = "." + ext.lower()
                if ext in IMAGE_SUFFIXES and key not in images:
                    images[key] = info
                elif ext == ".cls":
                    labels[key] = _label(tar, info, shard_name)
    except tarfile.TarError as exc:
        raise ValidationFailed(f"{shard_name} is not a readable tar file: {exc}") from None
    return [(info.offset_data, info.size, key, labels.get(key)) for key, info in images.items()]


def _label(tar: tarfile.TarFile, info: tarfile.TarInfo, shard_name: str) -> int:
    """A ``.cls`` member's label: a non-negative integer a frame's int64 labels hold."""
    member = tar.extractfile(info)
    text = (member.read(32) if member else b"").decode("ascii", "replace").strip()
    if not text.isdigit() or int(text) >= MAX_LABEL:
        raise ValidationFailed(
            f"{shard_name}: {info.name[:200]} is not an integer label in 0..{MAX_LABEL - 1}"
        )
    return int(text)
