"""ZIP archives of encoded images, the ``application/zip`` answer of ``/v1/augment``."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def make_zip(files: Sequence[tuple[str, bytes]]) -> bytes:
    """A ZIP of already-compressed files (PNG/JPEG), stored without deflate.

    Timestamps are fixed so the same images give the same archive bytes. Duplicate names
    are a caller bug (ValueError): unzip tools would silently keep only one.
    """
    buffer = io.BytesIO()
    seen: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, payload in files:
            if name in seen:
                raise ValueError(f"duplicate file name in zip: {name!r}")
            seen.add(name)
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)
    return buffer.getvalue()
