"""augsvc.codec.archive: deterministic ZIP answers."""

from __future__ import annotations

import io
import zipfile

import pytest

from augsvc import codec
from tests import imagegen


def test_make_zip_stores_files_deterministically() -> None:
    files = [("0.png", imagegen.png_bytes(4, 4)), ("1.jpg", imagegen.jpeg_bytes(4, 4))]
    archive = codec.make_zip(files)
    assert archive == codec.make_zip(files)
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        assert zipped.namelist() == ["0.png", "1.jpg"]
        for info, (name, payload) in zip(zipped.infolist(), files, strict=True):
            assert info.compress_type == zipfile.ZIP_STORED
            assert zipped.read(name) == payload


def test_make_zip_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        codec.make_zip([("a.png", b"1"), ("a.png", b"2")])
