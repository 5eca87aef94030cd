"""What a recipe store is: the protocol both implementations pass one test-suite against.

The store treats a recipe document as opaque: the recipes package has already validated
and canonicalised it and computed its digest, so the store only checks what it relies on
itself (the shape of names, digests and versions) and never re-derives a digest.

Versions: each PUT of new content under a name gets the next version, 1, 2, 3, ...
A version number is never reused, not even after DELETE: a PUT after DELETE continues
from the highest version the name ever had. A reference such as ``name@3`` pinned in a
training config therefore means one document forever, or nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from augsvc.errors import InvalidReference

DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoredRecipe:
    """One stored version of a named recipe."""

    name: str
    version: int
    digest: str  # "sha256:<64 hex>", the ETag of this version
    document: dict[str, Any]  # canonical recipe document; a fresh copy on every read
    created_at: float  # unix seconds


@runtime_checkable
class RecipeStore(Protocol):
    """Named, versioned recipes. Every method may raise StoreUnavailable."""

    async def put(
        self, name: str, document: dict[str, Any], digest: str, *, if_match: str | None = None
    ) -> tuple[StoredRecipe, bool]:
        """Store ``document`` as the next version of ``name``; return it and ``created``.

        - ``if_match`` is an If-Match value already unquoted by the API: ``"*"`` matches
          any existing version, a digest matches only the latest version's digest.
          No match (including any ``if_match`` on a missing name): PreconditionFailed,
          whatever the document. It comes first: a client whose If-Match names an older
          version has not seen the latest, and is told so even when its document
          happens to equal the latest (a retried conditional PUT that already
          succeeded included: its If-Match now names the version it replaced).
        - Same digest as the latest version: that version, ``created=False``.
        - Otherwise a new version, latest + 1, assigned atomically.
        """
        ...

    async def get(self, name: str, version: int | None = None) -> StoredRecipe:
        """The latest version, or ``version``; RecipeNotFound when absent."""
        ...

    async def get_by_digest(self, digest: str) -> StoredRecipe:
        """A stored version with this digest; RecipeNotFound when none.

        Several names (or versions) can hold the same document; the first by
        (name, version) is returned so both implementations answer alike.
        """
        ...

    async def versions(self, name: str) -> list[StoredRecipe]:
        """All versions of ``name``, ascending; RecipeNotFound when none."""
        ...

    async def list(self) -> list[StoredRecipe]:
        """The latest version of every name, sorted by name."""
        ...

    async def delete(self, name: str) -> int:
        """Remove every version of ``name``; return how many; RecipeNotFound when none."""
        ...

    async def ping(self) -> None:
        """Return when the store is usable; StoreUnavailable otherwise (for /readyz)."""
        ...

    async def close(self) -> None:
        """Release connections. The store is not used afterwards."""
        ...


def _shown(value: object) -> str:
    """repr() capped, so a hostile megabyte-long name does not end up in a message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not DIGEST_PATTERN.fullmatch(digest):
        raise InvalidReference(
            f"invalid digest {_shown(digest)}: expected sha256:<64 lowercase hex>"
        )
    return digest


def check_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidReference(
            f"invalid recipe version {_shown(version)}: expected an integer >= 1"
        )
    return version
