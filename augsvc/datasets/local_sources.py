"""Image sources on the server's disk: an ImageFolder tree or WebDataset tar shards
(remote_sources.py reads the same layouts from object storage).

Opening a source indexes it once (file list, class names, tar member offsets) so a
stream can read any sample by index in O(1): a folder file is read directly, a tar
member is read with one seek into its shard. Every file is checked against the data
roots after resolving symlinks, at indexing and again at reading; a file that went
away, or is no longer a regular file, is SampleUnreadable naming its index and path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from augsvc.datasets.paths import inside
from augsvc.datasets.source_base import (
    IMAGE_SUFFIXES,
    REGISTER_AGAIN,
    Sample,
    Source,
    SourceLimits,
    read_file,
    sample_name,
    unreadable,
)
from augsvc.datasets.spec import DatasetSpec
from augsvc.datasets.tar_index import index_tar
from augsvc.errors import PathNotAllowed, SampleUnreadable, ValidationFailed


@dataclass
class FolderSource(Source):
    spec: DatasetSpec
    root: Path  # the dataset's folder, resolved: sample paths are named relative to it
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
        label = None if self.labels is None else self.labels[index]
        name = sample_name(index, relative(path, self.root))
        return read_local(path, index, self.root, self.roots), label, name

    def check(self) -> None:
        check_folder(self.root, self.spec)


@dataclass(frozen=True)
class _Shard:
    """A shard as it was indexed: a read from a shard of another size or modification
    time would take stale offsets for samples, so it is refused."""

    path: Path
    shown: str  # relative to the dataset
    size: int
    mtime_ns: int

    def changed(self) -> str | None:
        """Why the shard no longer matches its index, or None."""
        try:
            info = os.stat(self.path)
        except OSError as exc:
            return exc.strerror or type(exc).__name__
        if (info.st_size, info.st_mtime_ns) != (self.size, self.mtime_ns):
            return "the shard was rewritten after it was indexed"
        return None


@dataclass(frozen=True)
class _Member:
    shard: _Shard
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
    shards: list[_Shard]

    def __len__(self) -> int:
        return len(self.members)

    @property
    def labelled(self) -> bool:
        return bool(self.members) and self.members[0].label is not None

    def read(self, index: int) -> Sample:
        m = self.members[index]
        shown = f"{m.shard.shown}:{m.key}"
        still_inside(m.shard.path, index, shown, self.roots)
        reason = m.shard.changed()
        if reason is not None:
            raise unreadable(index, shown, reason)
        data = read_file(m.shard.path, index, shown, m.offset, m.size)
        return data, m.label, sample_name(index, shown)

    def check(self) -> None:
        for shard in self.shards:
            reason = shard.changed()
            if reason is not None:
                raise SampleUnreadable(
                    f"dataset {self.spec.path!r}: shard {shard.shown!r} cannot be read: "
                    f"{reason}; " + REGISTER_AGAIN
                )


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


def read_local(path: Path, index: int, root: Path, roots: Sequence[Path]) -> bytes:
    """Sample ``index``'s file, checked to be still inside the data roots (the tree may
    have changed since indexing) and still a readable regular file."""
    shown = relative(path, root)
    still_inside(path, index, shown, roots)
    return read_file(path, index, shown)


def still_inside(path: Path, index: int, shown: str, roots: Sequence[Path]) -> None:
    """PathNotAllowed when sample ``index``'s file now resolves outside the data roots;
    SampleUnreadable when it no longer resolves at all (a symlink loop)."""
    try:
        escaped = not inside(path, roots)
    except OSError as exc:
        raise unreadable(index, shown, exc.strerror or type(exc).__name__) from None
    if escaped:
        raise PathNotAllowed(f"sample {index} ({shown!r}) now resolves outside the data roots")


def relative(path: Path, root: Path) -> str:
    """``path`` as the dataset names it: relative to its folder."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name


def check_folder(root: Path, spec: DatasetSpec) -> None:
    """SampleUnreadable when the dataset's folder is gone, or is no longer a folder it
    can list: one system call, whatever the dataset's size."""
    try:
        with os.scandir(root) as entries:
            next(entries, None)
    except OSError as exc:
        raise SampleUnreadable(
            f"dataset {spec.path!r} cannot be read: {exc.strerror or type(exc).__name__}; "
            + REGISTER_AGAIN
        ) from None


def open_folder(
    spec: DatasetSpec, path: Path, roots: Sequence[Path], _limits: SourceLimits
) -> FolderSource:
    if not path.is_dir():
        raise ValidationFailed(f"dataset path {spec.path!r} is not a folder")
    class_dirs = sorted(p for p in path.iterdir() if p.is_dir())
    if not class_dirs:  # a flat folder: images without labels
        return FolderSource(spec, path, images_in(path, roots), None, None, roots)
    files: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(class_dirs):
        if not inside(folder, roots):
            raise PathNotAllowed(f"class folder {folder.name!r} links outside the data roots")
        images = images_in(folder, roots)
        files += images
        labels += [label] * len(images)
    return FolderSource(spec, path, files, labels, [d.name for d in class_dirs], roots)


def open_tar(
    spec: DatasetSpec, path: Path, roots: Sequence[Path], _limits: SourceLimits
) -> TarSource:
    # Only regular files are opened: a named pipe would block the indexing thread.
    shards = sorted(p for p in path.glob("*.tar") if p.is_file()) if path.is_dir() else [path]
    if not path.is_dir() and not path.is_file():
        raise ValidationFailed(f"dataset path {spec.path!r} is neither a folder nor a file")
    members: list[_Member] = []
    indexed: list[_Shard] = []
    for shard in shards:
        if not inside(shard, roots):
            raise PathNotAllowed(f"shard {shard.name!r} links outside the data roots")
        entries = _index_shard(shard, relative(shard, path) if path.is_dir() else shard.name)
        indexed += [entries[0].shard] if entries else []
        members += entries
    has_labels = any(m.label is not None for m in members)
    if has_labels and any(m.label is None for m in members):
        raise ValidationFailed(f"dataset {spec.path!r}: some samples have a .cls label, some not")
    return TarSource(spec, members, None, roots, indexed)


def _index_shard(path: Path, shown: str) -> list[_Member]:
    with path.open("rb") as f:
        info = os.fstat(f.fileno())
        shard = _Shard(path, shown, info.st_size, info.st_mtime_ns)
        return [_Member(shard, *entry) for entry in index_tar(f, shown)]
