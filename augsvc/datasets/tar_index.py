"""The sample index of a WebDataset shard, read from its tar headers.

Shared by shards on disk and shards in object storage (through a ranged file), so
both index a shard the same way and give the same samples at the same indices.
"""

from __future__ import annotations

import tarfile
from typing import IO

from augsvc.datasets.source_base import IMAGE_SUFFIXES
from augsvc.errors import ValidationFailed


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
                    text = tar.extractfile(info).read(32).decode("ascii", "replace").strip()
                    if not text.isdigit():
                        raise ValidationFailed(f"{shard_name}: {info.name} is not an integer label")
                    labels[key] = int(text)
    except tarfile.TarError as exc:
        raise ValidationFailed(f"{shard_name} is not a readable tar file: {exc}") from None
    return [(info.offset_data, info.size, key, labels.get(key)) for key, info in images.items()]
