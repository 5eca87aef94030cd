"""Opening a registered dataset: the kind -> opener table and the checks every
opened source passes.

The sources themselves live with their kind: local_sources.py (folder, webdataset on
disk), target_sources.py (coco, paired), remote_sources.py (folder and webdataset in
object storage). This module sits above them all and nothing of theirs imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from augsvc.datasets.local_sources import open_folder, open_tar
from augsvc.datasets.paths import confine
from augsvc.datasets.remote_sources import ObjectSources
from augsvc.datasets.source_base import MAX_SAMPLES, Source, SourceLimits, opener_for
from augsvc.datasets.spec import DatasetSpec
from augsvc.datasets.target_sources import open_coco, open_paired
from augsvc.errors import ValidationFailed

LocalOpener = Callable[[DatasetSpec, Path, Sequence[Path], SourceLimits], Source]

#: How each kind of dataset on the server's disk is indexed.
LOCAL_OPENERS: dict[str, LocalOpener] = {
    "folder": open_folder,
    "webdataset": open_tar,
    "coco": open_coco,
    "paired": open_paired,
}


def open_source(
    spec: DatasetSpec,
    roots: Sequence[Path],
    objects: ObjectSources | None = None,
    limits: SourceLimits | None = None,
) -> Source:
    """Index the source; PathNotAllowed for escapes, ValidationFailed for unusable data
    (annotations are checked against ``limits``, the limits of uploaded data),
    UnknownSourceKind for a kind nothing opens."""
    if spec.url is not None:
        return (objects or ObjectSources(None, [])).open(spec)  # no allow-list: 403
    assert spec.path is not None
    opener = opener_for(LOCAL_OPENERS, spec, "local")
    shown = spec.path if len(spec.path) <= 200 else spec.path[:197] + "..."
    try:
        path = confine(spec.path, roots)
        if not path.exists():
            raise ValidationFailed(f"dataset path {shown!r} does not exist")
        source = opener(spec, path, roots, limits or SourceLimits())
    except OSError as exc:  # a name too long, a folder we may not read, an I/O error
        raise ValidationFailed(
            f"dataset path {shown!r} cannot be read: {exc.strerror or exc}"
        ) from None
    if len(source) == 0:
        raise ValidationFailed(f"dataset path {shown!r} holds no images")
    if len(source) >= MAX_SAMPLES:
        raise ValidationFailed(f"dataset {shown!r} holds more than {MAX_SAMPLES - 1} images")
    return source
