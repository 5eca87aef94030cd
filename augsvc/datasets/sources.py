"""Image sources a stream reads from: an ImageFolder tree or WebDataset tar shards
(on disk here; remote_sources.py reads the same layouts from object storage).

Opening a source indexes it once (file list, class names, tar member offsets) so a
stream can read any sample by index in O(1): a folder file is read directly, a tar
member is read with one seek into its shard. Every file is checked against the data
roots after resolving symlinks, at indexing and again at reading.
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from augsvc.datasets.paths import confine, inside
from augsvc.errors import FieldError, PathNotAllowed, ValidationFailed

if TYPE_CHECKING:
    from augsvc.datasets.remote_sources import ObjectSources

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_SAMPLES = 2**32


class DatasetSpec(BaseModel):
    """What PUT /v1/datasets/{name} takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["folder", "webdataset", "coco", "paired"] = Field(
        description="folder: ImageFolder layout (class subfolders give labels); "
        "webdataset: .tar shards of key.jpg/key.png with optional key.cls; "
        "coco: an images folder (path) and a COCO instances/keypoints JSON "
        "(annotations): boxes, category ids, keypoints, instance masks; "
        "paired: path holds images/ and masks/, matched by file stem"
    )
    path: str | None = Field(
        default=None, min_length=1, max_length=4096, description="Under AUGSVC_DATA_ROOTS."
    )
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Instead of path: s3://bucket/prefix in object storage, under "
        "AUGSVC_DATA_URLS.",
    )
    annotations: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="coco only: the COCO JSON file, under AUGSVC_DATA_ROOTS.",
    )

    @model_validator(mode="after")
    def _one_location(self) -> DatasetSpec:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path (a server folder) and url (s3://...)")
        if (self.annotations is None) == (self.kind == "coco"):
            raise ValueError("annotations (a COCO JSON file) is given exactly for kind coco")
        if self.url is not None and self.kind in ("coco", "paired"):
            raise ValueError(f"{self.kind} datasets are read from a server folder (path)")
        return self


def parse_spec(document: Any) -> DatasetSpec:
    """Validate a registration body (already parsed), ValidationFailed naming each bad
    field as ``body.<field>``."""
    try:
        return DatasetSpec.model_validate(document)
    except ValidationError as exc:
        errors = [
            FieldError(("body", *err["loc"]), err["msg"].removeprefix("Value error, "))
            for err in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(str(p) for p in e.loc)}: {e.msg}" for e in errors[:5])
        raise ValidationFailed(f"invalid dataset registration: {detail}", errors=errors) from None


class Source(Protocol):
    spec: DatasetSpec
    classes: list[str] | None

    def __len__(self) -> int: ...

    def read(self, index: int) -> tuple[bytes, int | None, str]:
        """(encoded image bytes, label or None, a name for error messages)."""
        ...


@dataclass
class FolderSource:
    spec: DatasetSpec
    files: list[Path]
    labels: list[int] | None
    classes: list[str] | None
    roots: Sequence[Path]

    def __len__(self) -> int:
        return len(self.files)

    def read(self, index: int) -> tuple[bytes, int | None, str]:
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
class TarSource:
    spec: DatasetSpec
    members: list[_Member]
    classes: list[str] | None
    roots: Sequence[Path]

    def __len__(self) -> int:
        return len(self.members)

    def read(self, index: int) -> tuple[bytes, int | None, str]:
        m = self.members[index]
        with m.shard.open("rb") as f:
            f.seek(m.offset)
            return f.read(m.size), m.label, m.key


def open_source(
    spec: DatasetSpec, roots: Sequence[Path], objects: ObjectSources | None = None
) -> Source:
    """Index the source; PathNotAllowed for escapes, ValidationFailed for unusable data."""
    if spec.url is not None:
        from augsvc.datasets.remote_sources import ObjectSources  # it builds on this module

        return (objects or ObjectSources(None, [])).open(spec)  # no allow-list: 403
    assert spec.path is not None
    path = confine(spec.path, roots)
    shown = spec.path if len(spec.path) <= 200 else spec.path[:197] + "..."
    try:
        if not path.exists():
            raise ValidationFailed(f"dataset path {shown!r} does not exist")
        if spec.kind in ("coco", "paired"):
            from augsvc.datasets.target_sources import open_target_source  # builds on this

            source: Source = open_target_source(spec, path, roots)
        else:
            source = (
                _open_folder(spec, path, roots)
                if spec.kind == "folder"
                else _open_tar(spec, path, roots)
            )
    except OSError as exc:  # a name too long, a folder we may not read, an I/O error
        raise ValidationFailed(
            f"dataset path {shown!r} cannot be read: {exc.strerror or exc}"
        ) from None
    if len(source) == 0:
        raise ValidationFailed(f"dataset path {shown!r} holds no images")
    if len(source) >= MAX_SAMPLES:
        raise ValidationFailed(f"dataset {shown!r} holds more than {MAX_SAMPLES - 1} images")
    return source


def _images_in(folder: Path, roots: Sequence[Path]) -> list[Path]:
    found = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        if not inside(p, roots):
            raise PathNotAllowed(f"{p.relative_to(folder)} links outside the data roots")
        found.append(p)
    return found


def _open_folder(spec: DatasetSpec, path: Path, roots: Sequence[Path]) -> FolderSource:
    if not path.is_dir():
        raise ValidationFailed(f"dataset path {spec.path!r} is not a folder")
    class_dirs = sorted(p for p in path.iterdir() if p.is_dir())
    if not class_dirs:  # a flat folder: images without labels
        return FolderSource(spec, _images_in(path, roots), None, None, roots)
    files: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(class_dirs):
        if not inside(folder, roots):
            raise PathNotAllowed(f"class folder {folder.name!r} links outside the data roots")
        images = _images_in(folder, roots)
        files += images
        labels += [label] * len(images)
    return FolderSource(spec, files, labels, [d.name for d in class_dirs], roots)


def _open_tar(spec: DatasetSpec, path: Path, roots: Sequence[Path]) -> TarSource:
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
