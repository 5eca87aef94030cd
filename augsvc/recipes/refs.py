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


#: How a name is described in errors: the rule in words, the pattern, and why.
NAME_RULE = (
    f"names are lowercase, 1-64 of a-z 0-9 . _ - starting with a letter or digit"
    f" (pattern ^{NAME_PATTERN}$), so that one name has one spelling in URLs and keys"
)


def _suggestion(text: str, pattern: re.Pattern[str]) -> str:
    """``; did you mean 'train'?`` when lowercasing alone would make ``text`` valid."""
    lowered = text.lower()
    return f"; did you mean {lowered!r}?" if lowered != text and pattern.fullmatch(lowered) else ""


def check_name(name: str, what: str = "recipe") -> str:
    """Names of recipes and datasets: they appear in URLs and Redis keys.

    Names are not case-folded: ``Train`` and ``train`` would otherwise be one recipe
    stored under a spelling the user never typed, and the reference a client wrote down
    would differ from the one the server echoes. The error says so and suggests the
    lowercase spelling."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        hint = _suggestion(name, _NAME) if isinstance(name, str) else ""
        raise InvalidReference(f"invalid {what} name {shown}: {NAME_RULE}{hint}")
    return name


def parse_ref(text: str) -> RecipeRef:
    if m := _DIGEST.fullmatch(text):
        return RecipeRef(digest=f"sha256:{m['hex']}")
    if m := _REF.fullmatch(text):
        return RecipeRef(name=m["name"], version=int(m["version"]) if m["version"] else None)
    raise InvalidReference(
        f"malformed recipe reference {text[:80]!r}: expected name, name@version or"
        f" sha256:<64 hex>; {NAME_RULE}{_suggestion(text[:80], _REF)}"
    )
