"""Canonical JSON and the content digest of a recipe.

The canonical form is the validated model with every default filled in and every
shorthand expanded, serialised with sorted keys and no whitespace. Two documents
that mean the same augmentation therefore share one digest, and the digest is what
seeds every random draw: change a recipe and every sample changes with it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from augsvc.recipes.schema import Recipe

DIGEST_PREFIX = "sha256:"


def canonical_document(recipe: Recipe) -> dict[str, Any]:
    """The ``targets`` block appears only when given, so recipes without it keep the
    digest (and so the samples) they had before it existed."""
    document = recipe.model_dump(mode="json")
    if document.get("targets") is None:
        document.pop("targets", None)
    return document


def canonical_json(recipe: Recipe) -> bytes:
    return json.dumps(
        canonical_document(recipe), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode()


def digest(recipe: Recipe) -> str:
    """``sha256:<hex>`` of the canonical JSON."""
    return DIGEST_PREFIX + hashlib.sha256(canonical_json(recipe)).hexdigest()
