"""Recipe documents read from files or text: JSON, or YAML by suffix.

The server reads recipe bodies the same way (a parity test holds the two readers to
the same answers), so a file the SDK sends is a file the server would have accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

Syntax = Literal["json", "yaml"]


def syntax_of(filename: str) -> Syntax:
    """YAML for ``.yaml``/``.yml`` files, JSON otherwise."""
    return "yaml" if filename.lower().endswith((".yaml", ".yml")) else "json"


def parse_recipe_document(
    data: bytes | bytearray | str, syntax: Syntax, source: str = "the document"
) -> dict[str, Any]:
    """A recipe mapping from text; ValueError naming ``source`` when the text is not UTF-8,
    not valid ``syntax``, or not a mapping."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        if syntax == "json":
            document = json.loads(text)
        else:
            import yaml

            document = yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{source} is not valid {syntax.upper()}: {exc}") from None
    except Exception as exc:  # yaml.YAMLError, without importing yaml for JSON users
        if type(exc).__module__.startswith("yaml"):
            reason = " ".join(str(exc).split())[:300]
            raise ValueError(f"{source} is not valid YAML: {reason}") from None
        raise
    if not isinstance(document, dict):
        raise ValueError(f"{source}: a recipe is a mapping (ops, output), got {type(document)}")
    return document


def load_recipe_file(path: str | Path) -> dict[str, Any]:
    """A recipe from a ``.json`` / ``.yaml`` / ``.yml`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe file {str(path)!r} does not exist")
    return parse_recipe_document(path.read_bytes(), syntax_of(path.name), source=str(path))
