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

from augsvc.recipes.schema import Recipe, parse_recipe

DIGEST_PREFIX = "sha256:"

#: What ``output.channels`` meant before 3 became the default. A canonical document
#: always names its channels, so this only reads a stored document that does not.
STORED_CHANNELS_DEFAULT = "auto"


def canonical_document(recipe: Recipe) -> dict[str, Any]:
    """The ``targets`` block appears only when given, so recipes without it keep the
    digest (and so the samples) they had before it existed. Every output option,
    ``channels`` included, is always written out: a default that changes can never
    change what a stored record means."""
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


def stored_recipe(document: Any) -> Recipe:
    """A recipe read back from the store, as it meant when it was stored.

    A document the store holds was canonical when written, so it names its
    ``output.channels``; one that does not (written by hand into the store, or by a
    canonical form that left defaults out) was written while ``auto`` was the default,
    and its digest pinned ``auto``, so it is read as ``auto``, never as today's default.
    """
    if isinstance(document, dict):
        output = document.get("output", {})
        if isinstance(output, dict) and "channels" not in output:
            output = {**output, "channels": STORED_CHANNELS_DEFAULT}
            document = {**document, "output": output}
    return parse_recipe(document)
