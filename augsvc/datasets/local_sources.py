"""Image sources on the server's disk: an ImageFolder tree or WebDataset tar shards
(remote_sources.py reads the same layouts from object storage).

Opening a source indexes it once (file list, class names, tar member offsets) so a
stream can read any sample by index in O(1): a folder file is read directly, a tar
member is read with one seek into its shard. Every file is checked against the data
roots after resolving symlinks, at indexing and again at reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from augsvc.datasets.paths import inside
from augsvc.datasets.source_base import IMAGE_SUFFIXES, Sample, Source
from augsvc.datasets.spec import DatasetSpec
from augsvc.datasets.tar_index import index_tar
from augsvc.errors import PathNotAllowed, ValidationFailed


@dataclass
class FolderSource(Source):
    spec: DatasetSpec
    files: list[Path]
    labels: list[int] | None
    classes: list[str] | None
    roots: Sequence[Path]

    def __len__(self) -> int:
        return len(self.files)

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def read(self, index: int) -> Sample:
        path = self.files[index]
        if not inside(path, self.roots):  # the tree may have changed since indexing
            raise PathNotAllowed(f"{path.name!r} now resolves outside the data roots")
        label = None if self.labels is None else self.labels[index]
        return path.read_bytes(), label, path.name


@dataclass(frozen=True)
class _Member:
    shard: Path
    offset: int
    size: int
    key: str
    label: int | None


@dataclass
class TarSource(Source):
    spec: DatasetSpec
    members: list[_Member]
    classes: list[str] | None
    roots: Sequence[Path]

    def __len__(self) -> int:
        return len(self.members)

    @property
    def labelled(self) -> bool:
        return bool(self.members) and self.members[0].label is not None

    def read(self, index: int) -> Sample:
        m = self.members[index]
        with m.shard.open("rb") as f:
            f.seek(m.offset)
            return f.read(m.size), m.label, m.key


def images_in(folder: Path, roots: Sequence[Path]) -> list[Path]:
    """Every image file under ``folder``, sorted; PathNotAllowed for one that links out."""
    found = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        if not inside(p, roots):
            raise PathNotAllowed(f"{p.relative_to(folder)} links outside the data roots")
        found.append(p)
    return found


def open_folder(spec: DatasetSpec, path: Path, roots: Sequence[Path]) -> FolderSource:
    if not path.is_dir():
        raise ValidationFailed(f"dataset path {spec.path!r} is not a folder")
    class_dirs = sorted(p for p in path.iterdir() if p.is_dir())
    if not class_dirs:  # a flat folder: images without labels
        return FolderSource(spec, images_in(path, roots), None, None, roots)
    files: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(class_dirs):
        if not inside(folder, roots):
            raise PathNotAllowed(f"class folder {folder.name!r} links outside the data roots")
        images = images_in(folder, roots)
        files += images
        labels += [label] * len(images)
    return FolderSource(spec, files, labels, [d.name for d in class_dirs], roots)


def open_tar(spec: DatasetSpec, path: Path, roots: Sequence[Path]) -> TarSource:
    shards = sorted(path.glob("*.tar")) if path.is_dir() else [path]
    members: list[_Member] = []
    for shard in shards:
        if not inside(shard, roots):
            raise PathNotAllowed(f"shard {shard.name!r} links outside the data roots")
        members += _index_shard(shard)
    has_labels = any(m.label is not None for m in members)
    if has_labels and any(m.label is None for m in members):
        raise ValidationFailed(f"dataset {spec.path!r}: some samples have a .cls label, some not")
    return TarSource(spec, members, None, roots)


def _index_shard(shard: Path) -> list[_Member]:
    with shard.open("rb") as f:
        return [_Member(shard, *entry) for entry in index_tar(f, shard.name)]
