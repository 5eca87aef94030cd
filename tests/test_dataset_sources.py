"""The dataset source base class and the kind -> opener tables, without a server."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from augsvc.datasets import DatasetSpec, open_source
from augsvc.datasets.remote_sources import REMOTE_OPENERS, ObjectSources
from augsvc.datasets.source_base import UnknownSourceKind
from augsvc.datasets.sources import LOCAL_OPENERS
from tests.imagegen import jpeg_bytes, png_bytes

SPEC_KINDS = set(typing.get_args(DatasetSpec.model_fields["kind"].annotation))


def test_every_kind_the_spec_admits_has_an_opener():
    """A kind added to the spec without an opener would fail at its first registration."""
    assert set(LOCAL_OPENERS) == SPEC_KINDS
    assert set(REMOTE_OPENERS) == SPEC_KINDS - {"coco", "paired"}  # the spec wants a path


def test_an_unknown_kind_fails_loudly_instead_of_being_read_as_a_tar(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"")
    spec = DatasetSpec.model_construct(kind="parquet", path="x.tar", url=None)
    with pytest.raises(UnknownSourceKind, match="parquet"):
        open_source(spec, [tmp_path])
    remote = DatasetSpec.model_construct(kind="coco", path=None, url="s3://bucket/coco")
    with pytest.raises(UnknownSourceKind, match="coco"):
        ObjectSources(None, []).open(remote)


def test_a_plain_source_declares_what_it_cannot_do(tmp_path):
    for i in range(3):
        (tmp_path / "flat" / f"{i}.jpg").parent.mkdir(exist_ok=True)
        (tmp_path / "flat" / f"{i}.jpg").write_bytes(jpeg_bytes(8, 8, seed=i))
        (tmp_path / "pets" / "cat" / f"{i}.jpg").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pets" / "cat" / f"{i}.jpg").write_bytes(jpeg_bytes(8, 8, seed=i))
    flat = open_source(DatasetSpec(kind="folder", path="flat"), [tmp_path])
    pets = open_source(DatasetSpec(kind="folder", path="pets"), [tmp_path])
    assert (flat.labelled, pets.labelled) == (False, True)
    assert not flat.has_targets
    with pytest.raises(TypeError, match="no targets"):
        flat.read_targets(0, (6, 8))
    assert flat.read_many([2, 0]) == [flat.read(2), flat.read(0)]
    order = np.arange(3)
    assert flat.for_stream(order, [order]) is flat  # nothing to fetch ahead on disk
    flat.close()


def test_a_source_with_targets_says_so_and_has_no_image_labels(tmp_path):
    for folder in ("images", "masks"):
        (tmp_path / "seg" / folder).mkdir(parents=True)
    (tmp_path / "seg" / "images" / "a.png").write_bytes(png_bytes(8, 6))
    (tmp_path / "seg" / "masks" / "a.png").write_bytes(png_bytes(8, 6, mode="L"))
    source = open_source(DatasetSpec(kind="paired", path="seg"), [tmp_path])
    assert source.has_targets and not source.labelled
    assert source.read_targets(0, (6, 8)).mask.shape[-2:] == (6, 8)
