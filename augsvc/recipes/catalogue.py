"""The op catalogue and the recipe's JSON schema, both derived from the op registry."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from augsvc.ops import generation, registered
from augsvc.recipes.schema import Recipe

REF_TEMPLATE = "#/$defs/{model}"


def catalogue() -> list[dict[str, Any]]:
    """Every op with its description, kind and JSON schema (served at GET /v1/ops); a
    policy also shows its ``expansion``: its canonical form with the default
    parameters (or its example's), the op table a recipe's digest pins."""
    return copy.deepcopy(_catalogue(generation()))


@lru_cache(maxsize=4)
def _catalogue(_generation: int) -> list[dict[str, Any]]:
    entries = []
    for cls in registered():
        entry = {
            "op": cls.name(),
            "kind": cls.kind,
            "changes_size": cls.changes_size,
            "description": " ".join((cls.__doc__ or "").split()),
            "schema": cls.model_json_schema(),
        }
        if cls.kind == "policy":
            doc = {"op": cls.name(), **cls.example}
            entry["expansion"] = cls.model_validate(doc).model_dump(mode="json")
        entries.append(entry)
    return entries


def recipe_json_schema(ref_template: str = REF_TEMPLATE) -> dict[str, Any]:
    """The recipe document's JSON schema: ``ops`` items are one of the registered ops,
    told apart by their ``op`` name. Definitions are under ``$defs`` and referenced with
    ``ref_template`` (the OpenAPI document moves them to its components)."""
    return copy.deepcopy(_recipe_json_schema(generation(), ref_template))


@lru_cache(maxsize=4)
def _recipe_json_schema(_generation: int, ref_template: str) -> dict[str, Any]:
    schema = Recipe.model_json_schema(ref_template=ref_template)
    defs = schema.pop("$defs", {})
    defs.pop("Op", None)
    mapping = {}
    for cls in registered():
        op_schema = cls.model_json_schema(ref_template=ref_template)
        defs.update(op_schema.pop("$defs", {}))
        defs[cls.__name__] = op_schema
        mapping[cls.name()] = ref_template.format(model=cls.__name__)
    schema["properties"]["ops"]["items"] = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "op", "mapping": mapping},
    }
    schema["$defs"] = defs
    return schema
