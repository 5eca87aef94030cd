"""Recipes: the document (ops from the registry plus output options), its canonical
form and digest, references, and the catalogue derived from the op registry."""

from augsvc.recipes.catalogue import catalogue, recipe_json_schema
from augsvc.recipes.digest import canonical_document, canonical_json, digest, stored_recipe
from augsvc.recipes.refs import RecipeRef, check_name, parse_ref
from augsvc.recipes.schema import OutputOptions, Recipe, parse_op, parse_recipe

__all__ = [
    "OutputOptions",
    "Recipe",
    "RecipeRef",
    "canonical_document",
    "canonical_json",
    "catalogue",
    "check_name",
    "digest",
    "parse_op",
    "parse_recipe",
    "parse_ref",
    "recipe_json_schema",
    "stored_recipe",
]
