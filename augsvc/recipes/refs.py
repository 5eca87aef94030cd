"""Recipe references: ``name``, ``name@3`` or ``sha256:<64 hex>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from augsvc.errors import InvalidReference

NAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"
_NAME = re.compile(NAME_PATTERN)
_REF = re.compile(rf"(?P<name>{NAME_PATTERN})(?:@(?P<version>[1-9][0-9]{{0,8}}))?")
_DIGEST = re.compile(r"sha256:(?P<hex>[0-9a-f]{64})")
#: Every accepted reference, as one regular expression (for the OpenAPI document).
REF_PATTERN = rf"{NAME_PATTERN}(@[1-9][0-9]{{0,8}})?|sha256:[0-9a-f]{{64}}"


@dataclass(frozen=True)
class RecipeRef:
    name: str | None = None
    version: int | None = None
    digest: str | None = None

    def __str__(self) -> str:
        if self.digest:
            return self.digest
        return f"{self.name}@{self.version}" if self.version else str(self.name)


def check_name(name: str, what: str = "recipe") -> str:
    """Names of recipes and datasets: they appear in URLs and Redis keys."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise InvalidReference(
            f"invalid {what} name {shown}: use 1-64 of a-z 0-9 . _ - starting with a"
            " letter or digit"
        )
    return name


def parse_ref(text: str) -> RecipeRef:
    if m := _DIGEST.fullmatch(text):
        return RecipeRef(digest=f"sha256:{m['hex']}")
    if m := _REF.fullmatch(text):
        return RecipeRef(name=m["name"], version=int(m["version"]) if m["version"] else None)
    raise InvalidReference(
        f"malformed recipe reference {text[:80]!r}: expected name, name@version or sha256:<64 hex>"
    )
