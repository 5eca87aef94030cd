"""Recipe documents as text: JSON or YAML in, a plain object out, or InvalidRecipe.

The service (a PUT body, the inline ``recipe`` part of an augment request) and the
command line (a local file) read recipes the same way, so a document that one accepts
the other accepts too, and a syntax error, a document nested deeper than
:data:`~augsvc.documents.MAX_NESTING` or a YAML alias is a field error naming where it
came from rather than a parser's traceback.
"""

from __future__ import annotations

from typing import Any

from augsvc.documents import Syntax, parse_document
from augsvc.errors import InvalidRecipe


def syntax_of(filename: str) -> Syntax:
    """YAML for ``.yaml``/``.yml`` files, JSON otherwise."""
    return "yaml" if filename.lower().endswith((".yaml", ".yml")) else "json"


def read_document(
    data: bytes | bytearray | str,
    syntax: Syntax,
    source: str = "the body",
    loc: tuple[str | int, ...] = ("body",),
) -> Any:
    """Parse ``data``; InvalidRecipe (field ``loc``) naming ``source`` when it is not
    UTF-8, not valid ``syntax``, too deeply nested or uses YAML anchors. The result
    still has to pass ``parse_recipe``."""
    return parse_document(data, syntax, source=source, error=InvalidRecipe, loc=loc)
