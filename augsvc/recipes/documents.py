"""Recipe documents as text: JSON or YAML in, a plain object out, or InvalidRecipe.

The service (a PUT body) and the command line (a local file) read recipes the same
way, so a document that one accepts the other accepts too, and a syntax error is a
field error naming where it came from rather than a parser's traceback.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml

from augsvc.errors import FieldError, InvalidRecipe

Syntax = Literal["json", "yaml"]


def syntax_of(filename: str) -> Syntax:
    """YAML for ``.yaml``/``.yml`` files, JSON otherwise."""
    return "yaml" if filename.lower().endswith((".yaml", ".yml")) else "json"


def read_document(data: bytes | bytearray | str, syntax: Syntax, source: str = "the body") -> Any:
    """Parse ``data``; InvalidRecipe (field ``body``) naming ``source`` when it is not
    UTF-8 or not valid ``syntax``. The result still has to pass ``parse_recipe``."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        return json.loads(text) if syntax == "json" else yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise InvalidRecipe(
            f"{source} is not valid {syntax.upper()}: {reason}",
            errors=[FieldError(("body",), reason)],
        ) from None
