"""The op catalogue and the recipe's JSON schema, both derived from the op registry.

Each schema comes in two forms. The *input* form (pydantic's validation mode) is what a
person or a generated client may write: the shorthands the validators expand
(``degrees: 30``, ``size: 224``, ``brightness: 0.4``) are in it, so a recipe the server
accepts also passes ``jsonschema.validate``. The *canonical* form (serialization mode)
is what stored records hold after expansion (``degrees: [-30.0, 30.0]``), which is what
a reader of ``GET /v1/recipes/{ref}`` gets back.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any, Literal

from augsvc.ops import generation, registered
from augsvc.recipes.schema import Recipe

REF_TEMPLATE = "#/$defs/{model}"


SchemaMode = Literal["validation", "serialization"]


def catalogue() -> list[dict[str, Any]]:
    """Every op with its description, kind, the JSON schema of what a recipe may say
    (``schema``) and of its canonical, stored form (``canonical_schema``); served at
    GET /v1/ops. A policy also shows its ``expansion``: its canonical form with the
    default parameters (or its example's), the op table a recipe's digest pins."""
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
            "schema": cls.model_json_schema(mode="validation"),
            "canonical_schema": cls.model_json_schema(mode="serialization"),
        }
        if cls.kind == "policy":
            doc = {"op": cls.name(), **cls.example}
            entry["expansion"] = cls.model_validate(doc).model_dump(mode="json")
        entries.append(entry)
    return entries


def recipe_json_schema(
    ref_template: str = REF_TEMPLATE, mode: SchemaMode = "validation"
) -> dict[str, Any]:
    """The recipe document's JSON schema: ``ops`` items are one of the registered ops,
    told apart by their ``op`` name. Definitions are under ``$defs`` and referenced with
    ``ref_template`` (the OpenAPI document moves them to its components). ``mode``
    validation is the input form, serialization the canonical form; the canonical
    form's definitions are named ``<Model>Canonical`` so both fit in one document."""
    return copy.deepcopy(_recipe_json_schema(generation(), ref_template, mode))


@lru_cache(maxsize=8)
def _recipe_json_schema(_generation: int, ref_template: str, mode: SchemaMode) -> dict[str, Any]:
    suffix = "" if mode == "validation" else "Canonical"
    template = ref_template.replace("{model}", "{model}" + suffix)
    schema = Recipe.model_json_schema(ref_template=template, mode=mode)
    defs = {name + suffix: d for name, d in schema.pop("$defs", {}).items()}
    defs.pop("Op" + suffix, None)
    mapping = {}
    for cls in registered():
        op_schema = cls.model_json_schema(ref_template=template, mode=mode)
        defs.update({name + suffix: d for name, d in op_schema.pop("$defs", {}).items()})
        defs[cls.__name__ + suffix] = op_schema
        mapping[cls.name()] = template.format(model=cls.__name__)
    schema["properties"]["ops"]["items"] = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "op", "mapping": mapping},
    }
    schema["$defs"] = defs
    return schema
