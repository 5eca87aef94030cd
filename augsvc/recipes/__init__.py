"""Recipes: schema, op catalogue, canonical form, digest and references."""

from augsvc.recipes.digest import canonical_document, canonical_json, digest
from augsvc.recipes.ops import OP_MODELS, catalogue
from augsvc.recipes.refs import RecipeRef, check_name, parse_ref
from augsvc.recipes.schema import OutputOptions, Recipe, parse_recipe

__all__ = [
    "OP_MODELS",
    "OutputOptions",
    "Recipe",
    "RecipeRef",
    "canonical_document",
    "canonical_json",
    "catalogue",
    "check_name",
    "digest",
    "parse_recipe",
    "parse_ref",
]
