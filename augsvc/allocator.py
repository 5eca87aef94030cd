"""Process-wide allocator settings, shared by ``augsvc serve`` and the benchmarks.

Its own module at the bottom of the layers: the server's command line and the
benchmark that measures a client against that server both tune the process the same
way, and neither should import the other to do it.
"""

from __future__ import annotations

import ctypes


def retain_freed_memory() -> bool:
    """Ask glibc to keep large freed blocks for reuse instead of unmapping them.

    Request bodies and response buffers are tens of MB. By default glibc serves each
    from fresh mmap pages and unmaps it on free, so every request pays the page
    faults of first touch, several times the cost of refilling a reused block. The
    cost is that RSS stays at its high-water mark, which a
    long-running service with bounded request sizes reaches quickly anyway.
    No-op (False) where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30) and mallopt(m_trim_threshold, 1 << 30))
