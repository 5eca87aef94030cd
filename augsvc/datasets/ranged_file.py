"""A read-only, seekable file over one object, read by byte ranges on demand.

``tarfile`` indexes a shard by reading each 512-byte header and seeking past the member's
data; over this file each header costs at most one ranged GET of a small window, so
indexing a shard of large images reads its headers, not its images. Members smaller
than the window come several headers to a request.
"""

from __future__ import annotations

import io

from augsvc.datasets.object_store import ObjectStore

#: Bytes fetched per miss: a header, a small label member and the next header fit.
WINDOW = 16 * 1024


class RangedFile(io.RawIOBase):
    def __init__(
        self, store: ObjectStore, bucket: str, key: str, size: int, window: int = WINDOW
    ) -> None:
        super().__init__()
        self.store, self.bucket, self.key, self.size = store, bucket, key, size
        self.name = key
        self._window = window
        self._pos = 0
        self._start = 0  # the cached bytes are [_start, _start + len(_cached))
        self._cached = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError("seek before the start of the object")
        self._pos = base + offset
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self._pos + n)
        if end <= self._pos:
            return b""
        cached_end = self._start + len(self._cached)
        if not (self._start <= self._pos and end <= cached_end):
            fetch_end = min(self.size, max(end, self._pos + self._window))
            self._cached = self.store.get(self.bucket, self.key, self._pos, fetch_end)
            self._start = self._pos
        out = self._cached[self._pos - self._start : end - self._start]
        self._pos = end
        return out

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
