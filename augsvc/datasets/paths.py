"""User paths confined to the configured data roots.

A path is resolved (symlinks followed, ``..`` collapsed) and must then lie inside one
of the resolved roots. Checking the resolved path, not the text, is what stops a
symlink inside a root from pointing outside it.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path

from augsvc.errors import PathNotAllowed


def confine(path: str | Path, roots: Sequence[Path]) -> Path:
    """The resolved ``path`` when it lies under a root; PathNotAllowed otherwise.

    Relative paths are taken relative to the first root.
    """
    if not roots:
        raise PathNotAllowed("no data roots are configured (set AUGSVC_DATA_ROOTS)")
    text = str(path)
    if "\x00" in text:
        raise PathNotAllowed("path contains a NUL byte")
    if ".." in Path(text).parts:
        raise PathNotAllowed(f"path {text[:200]!r} contains '..'")
    candidate = Path(text) if Path(text).is_absolute() else roots[0] / text
    resolved = resolve(candidate)
    if not any(resolved.is_relative_to(root) for root in roots):
        raise PathNotAllowed(f"path {text[:200]!r} is outside the configured data roots")
    return resolved


def inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether ``path`` resolves under a root; OSError when it cannot be resolved."""
    resolved = resolve(path)
    return any(resolved.is_relative_to(root) for root in roots)


def resolve(path: Path) -> Path:
    """``path.resolve()``, with a symlink loop as the OSError it is (ELOOP) rather than
    the RuntimeError pathlib turns it into, so callers that handle unreadable files
    handle loops too."""
    try:
        return path.resolve()
    except RuntimeError:
        raise OSError(errno.ELOOP, "Too many levels of symbolic links", str(path)) from None
