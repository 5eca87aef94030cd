"""Dataset sources, path confinement and the epoch order, without a server."""

from __future__ import annotations

import io
import os
import tarfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc.datasets import DatasetSpec, confine, epoch_order, open_source, rank_positions
from augsvc.datasets.order import sample_keys
from augsvc.errors import PathNotAllowed, SampleUnreadable, ValidationFailed
from tests.imagegen import jpeg_bytes, png_bytes


@pytest.fixture
def root(tmp_path):
    data = tmp_path / "data"
    for label, cls in enumerate(["cat", "dog"]):
        (data / "pets" / cls).mkdir(parents=True)
        for i in range(3 + label):
            (data / "pets" / cls / f"{i}.jpg").write_bytes(jpeg_bytes(16, 12, seed=i + 10 * label))
    (data / "pets" / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.png").write_bytes(png_bytes(8, 8))
    return data


def test_folder_source_gives_imagefolder_labels(root):
    source = open_source(DatasetSpec(kind="folder", path="pets"), [root])
    assert len(source) == 7
    assert source.classes == ["cat", "dog"]
    data, label, name = source.read(4)
    assert (label, name) == (1, "dog/1.jpg (sample 4)")  # errors name its path and index
    assert data == (root / "pets" / "dog" / "1.jpg").read_bytes()
    assert [source.read(i)[1] for i in range(7)] == [0, 0, 0, 1, 1, 1, 1]


def test_webdataset_shards_index_members_and_labels(root):
    shards = root / "shards"
    shards.mkdir()
    expected = {}
    for s in range(2):
        with tarfile.open(shards / f"train-{s}.tar", "w") as tar:
            for i in range(4):
                key = f"s{s}_{i:03d}"
                payload = png_bytes(10, 10, seed=s * 10 + i)
                expected[key] = (payload, s * 4 + i)
                for name, blob in (
                    (f"{key}.png", payload),
                    (f"{key}.cls", str(s * 4 + i).encode()),
                ):
                    info = tarfile.TarInfo(name)
                    info.size = len(blob)
                    tar.addfile(info, io.BytesIO(blob))
    source = open_source(DatasetSpec(kind="webdataset", path="shards"), [root])
    assert len(source) == 8
    for i in range(8):
        data, label, name = source.read(i)
        shard, key = name.removesuffix(f" (sample {i})").split(":")
        assert (data, label) == expected[key]
        assert shard == f"train-{i // 4}.tar"


@pytest.mark.parametrize("path", ["../outside", "/etc", "pets/../../outside", "/"])
def test_paths_outside_the_roots_are_refused(root, path):
    with pytest.raises(PathNotAllowed):
        open_source(DatasetSpec(kind="folder", path=path), [root])


def test_symlinks_that_escape_are_refused(root, tmp_path):
    os.symlink(tmp_path / "outside", root / "escape")
    with pytest.raises(PathNotAllowed, match="outside"):
        confine("escape", [root])
    os.symlink(tmp_path / "outside" / "secret.png", root / "pets" / "cat" / "link.png")
    with pytest.raises(PathNotAllowed, match=r"link\.png"):
        open_source(DatasetSpec(kind="folder", path="pets"), [root])


def test_missing_or_empty_sources(root):
    with pytest.raises(ValidationFailed, match="does not exist"):
        open_source(DatasetSpec(kind="folder", path="nope"), [root])
    (root / "empty").mkdir()
    with pytest.raises(ValidationFailed, match="no images"):
        open_source(DatasetSpec(kind="folder", path="empty"), [root])
    (root / "bad.tar").write_bytes(b"definitely not a tar" * 100)
    with pytest.raises(ValidationFailed, match="tar"):
        open_source(DatasetSpec(kind="webdataset", path="bad.tar"), [root])


def test_a_name_too_long_is_a_validation_error_not_a_crash(root):
    """OSErrors from the filesystem (found by schemathesis as a 500) name the path."""
    with pytest.raises(ValidationFailed, match="cannot be read: File name too long"):
        open_source(DatasetSpec(kind="folder", path="a" * 300), [root])


def _coco_through_a_file(root):
    (root / "notes.json").write_text("{}")
    return DatasetSpec(kind="coco", path="pets", annotations="notes.json/instances.json")


def _coco_a_folder(root):
    (root / "instances.json").mkdir()
    return DatasetSpec(kind="coco", path="pets", annotations="instances.json")


def _coco_dangling(root):
    os.symlink(root / "deleted.json", root / "instances.json")
    return DatasetSpec(kind="coco", path="pets", annotations="instances.json")


def _shard_a_folder(root):
    (root / "shards" / "train-0.tar").mkdir(parents=True)
    return DatasetSpec(kind="webdataset", path="shards")


#: Sources the filesystem refuses to read, for any user (root included), each a real
#: condition on disk, and what the 422 says: the operating system's reason, or, where the
#: source checks first that a file is a regular file, that.
UNREADABLE = {
    "a path through a file": (_coco_through_a_file, "cannot be read: Not a directory$"),
    "a folder where a file belongs": (_coco_a_folder, "'instances.json' are not a regular file"),
    "a dangling symlink": (_coco_dangling, "cannot be read: No such file or directory$"),
    "a shard that is a folder": (_shard_a_folder, "'shards' holds no images"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_a_source_the_system_cannot_read_is_a_validation_error(root, case):
    """An OSError while indexing is the client's bad path (a 422 naming it and the
    system's reason), never a crash; these conditions hold even for root, as CI runs."""
    make, reason = UNREADABLE[case]
    spec = make(root)
    with pytest.raises(ValidationFailed, match=reason):
        open_source(spec, [root])


def test_an_unreadable_folder_is_a_validation_error(root):
    """A folder of mode 000: root ignores permissions, so it reads it as any other (the
    conditions above show the same error path as root)."""
    locked = root / "locked"
    (locked / "class0").mkdir(parents=True)
    (locked / "class0" / "x.png").write_bytes(b"")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            source = open_source(DatasetSpec(kind="folder", path="locked"), [root])
            assert len(source) == 1  # root: permissions do not apply
        else:
            with pytest.raises(ValidationFailed, match="cannot be read: Permission denied"):
                open_source(DatasetSpec(kind="folder", path="locked"), [root])
    finally:
        locked.chmod(0o755)


def test_epoch_order_is_a_permutation_fixed_by_seed_and_epoch():
    a = epoch_order(1000, seed=1, epoch=0)
    assert sorted(a.tolist()) == list(range(1000))
    assert np.array_equal(a, epoch_order(1000, seed=1, epoch=0))
    assert not np.array_equal(a, epoch_order(1000, seed=1, epoch=1))
    assert not np.array_equal(a, epoch_order(1000, seed=2, epoch=0))


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_cover_every_position_exactly_once(world_size):
    positions = np.concatenate([rank_positions(101, r, world_size, 0) for r in range(world_size)])
    assert sorted(positions.tolist()) == list(range(101))


def test_resume_with_another_world_size_sees_the_rest_exactly_once():
    k = 37  # the job checkpointed after global position 37 with w=2
    resumed = np.concatenate([rank_positions(101, r, 3, k) for r in range(3)])
    assert sorted(resumed.tolist()) == list(range(k, 101))


def test_sample_keys_differ_between_epochs():
    pos = np.arange(5)
    assert set(sample_keys(0, pos).tolist()).isdisjoint(sample_keys(1, pos).tolist())


@pytest.mark.parametrize("kind", ["folder", "webdataset"])
def test_a_path_no_one_can_read_is_a_validation_error_as_root_too(root, kind):
    """The chmod test above skips as root (how CI runs); a symlink loop is a real
    filesystem error (ELOOP) that root meets as well, and a named pipe must be refused,
    not opened (opening one for reading blocks until a writer comes)."""
    loop = root / "loop"
    loop.symlink_to(loop)
    with pytest.raises(ValidationFailed, match="cannot be read: Too many levels of symbolic"):
        open_source(DatasetSpec(kind=kind, path="loop"), [root])
    os.mkfifo(root / "pipe.tar")
    with pytest.raises(ValidationFailed, match=r"pipe\.tar"):
        open_source(DatasetSpec(kind=kind, path="pipe.tar"), [root])


def test_a_sample_that_became_unreadable_names_its_index_and_path(root):
    source = open_source(DatasetSpec(kind="folder", path="pets"), [root])
    victim = root / "pets" / "dog" / "1.jpg"
    victim.unlink()
    os.mkfifo(victim)  # read, it would block the stream's thread for ever
    with pytest.raises(SampleUnreadable, match=r"sample 4 \('dog/1.jpg'\).*not a regular file"):
        source.read(4)
    victim.unlink()
    victim.symlink_to(victim)
    with pytest.raises(SampleUnreadable, match=r"sample 4 \('dog/1.jpg'\).*symbolic links"):
        source.read(4)
    source.check()  # the folder itself is still there
    (root / "pets").rename(root / "moved")
    with pytest.raises(SampleUnreadable, match="pets"):
        source.check()


def test_a_replica_that_opens_a_broken_registration_says_sample_unreadable_too(root, aio):
    """A replica that indexed the dataset before its folder went and one that opens it
    only now answer alike: sample-unreadable, not one of them validation-failed."""
    from augsvc.service.sources import SourceCache
    from augsvc.store import StoredDataset

    stored = StoredDataset("pets", {"kind": "folder", "path": "pets"}, 1.0)
    warm, cold = SourceCache([root]), SourceCache([root])
    assert len(aio.run(warm.get(stored))) == 7
    (root / "pets").rename(root / "moved")
    for cache in (warm, cold):
        with pytest.raises(SampleUnreadable, match="pets"):
            aio.run(cache.get(stored))


def _shard(labels: list[bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i, label in enumerate(labels):
            for name, blob in ((f"k{i}.png", png_bytes(8, 8, seed=i)), (f"k{i}.cls", label)):
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    return buffer.getvalue()


@settings(max_examples=150, deadline=None)
@given(
    cut=st.integers(0, 4096),
    flips=st.lists(st.tuples(st.integers(0, 4095), st.integers(1, 255)), max_size=4),
)
def test_a_damaged_shard_is_indexed_or_refused_never_a_crash(tmp_path_factory, cut, flips):
    """Tar headers are user data too: whatever a shard's bytes, indexing it gives samples
    or a 422, and a label a frame could not hold (1e31) is refused."""
    root = tmp_path_factory.mktemp("shard")
    data = bytearray(_shard([b"1", b"99999999999999999999999999999999"[: 1 + cut % 32]]))
    for at, xor in flips:
        data[at % len(data)] ^= xor
    (root / "s.tar").write_bytes(bytes(data[: len(data) - cut % len(data)]))
    try:
        source = open_source(DatasetSpec(kind="webdataset", path="s.tar"), [root])
    except ValidationFailed:
        return
    for i in range(len(source)):
        try:
            _, label, _ = source.read(i)
        except SampleUnreadable:  # a member that runs past the end of a cut shard
            continue
        assert label is None or 0 <= label < 2**31
