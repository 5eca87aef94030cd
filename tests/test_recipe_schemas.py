"""The published JSON schemas accept what the server accepts.

``GET /v1/ops`` publishes each op's input form (``schema``: shorthands such as
``degrees: 30``, ``size: 224``, ``brightness: 0.4`` included), its canonical form
(``canonical_schema``, what stored records hold) and the whole recipe's input schema
(``recipe_schema``); ``/openapi.json`` carries the same as its ``Recipe`` component,
which is what generated clients validate request bodies with. Every recipe written in
the READMEs and in the tests that the server accepts must validate against each of them
(JSON Schema draft 2020-12, with ``jsonschema``), and so must randomly generated ones.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from augsvc.errors import InvalidRecipe
from augsvc.recipes import canonical_document, parse_recipe, recipe_json_schema
from tests.mixes import recipes
from tests.readme.blocks import read_blocks

ROOT = Path(__file__).resolve().parents[1]
READMES = ("README.md", "clients/python/README.md", "docs/architecture.md")
HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?\n(?P<body>.*?)\n\1\b", re.DOTALL)


def _dict_literals(source: str) -> list[Any]:
    """Every dict literal with an ``"ops"`` key that evaluates without names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict) and any(
            isinstance(k, ast.Constant) and k.value == "ops" for k in node.keys
        ):
            try:
                found.append(ast.literal_eval(node))
            except ValueError:
                continue
    return found


def _documents(text: str, lang: str) -> list[Any]:
    try:
        return [json.loads(text) if lang == "json" else yaml.safe_load(text)]
    except (ValueError, yaml.YAMLError):
        return []


def readme_recipes() -> list[tuple[str, Any]]:
    found = []
    for name in READMES:
        blocks, _ = read_blocks(ROOT / name, name)
        for block in blocks:
            if block.lang in ("json", "yaml", "yml"):
                docs = _documents(block.code, "json" if block.lang == "json" else "yaml")
            elif block.kind == "python":
                docs = _dict_literals(block.code)
            elif block.kind == "shell":
                docs = [
                    d for m in HEREDOC.finditer(block.code) for d in _documents(m["body"], "yaml")
                ]
            else:
                docs = []
            found += [(block.where, d) for d in docs if isinstance(d, dict) and "ops" in d]
    return found


def test_recipes_found_in_the_readmes():
    where = {w for w, _ in readme_recipes()}
    assert len(where) >= 3, where  # the recipe example, the engine, the quickstart


def accepted(candidates: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Those the server's own parser accepts (tests also hold deliberately bad ones)."""
    kept = []
    for where, document in candidates:
        try:
            parse_recipe(document)
        except InvalidRecipe:
            continue
        kept.append((where, document))
    return kept


def test_recipes() -> list[tuple[str, Any]]:
    found = []
    for path in sorted([*ROOT.glob("tests/**/*.py"), *ROOT.glob("clients/python/**/*.py")]):
        for document in _dict_literals(path.read_text()):
            found.append((str(path.relative_to(ROOT)), document))
    return found


test_recipes.__test__ = False  # a collector, not a test
CORPUS = accepted(readme_recipes()) + accepted(test_recipes())


def test_the_corpus_holds_shorthands():
    assert len(CORPUS) >= 40, len(CORPUS)
    text = json.dumps([d for _, d in CORPUS])
    for shorthand in ('"degrees": 30', '"size": 224', '"brightness": 0.4'):
        assert shorthand in text, shorthand


@pytest.fixture(scope="module")
def published(start_augsvc) -> dict[str, Any]:
    server = start_augsvc()
    with server.client() as client:
        return {"ops": client.get("/v1/ops").json(), "openapi": client.get("/openapi.json").json()}


def _validator(schema: dict[str, Any], document: dict[str, Any] | None = None):
    """A draft 2020-12 validator; ``#/components/...`` refs resolve inside ``document``
    (the OpenAPI file), as a client generated from it would resolve them."""
    if document is None:
        return Draft202012Validator(schema)
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:openapi", resource)
    rooted = json.loads(json.dumps(schema).replace('"#/components/', '"urn:openapi#/components/'))
    return Draft202012Validator(rooted, registry=registry)


def _problems(validator, document: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_every_accepted_recipe_validates_against_the_published_schemas(published):
    ops = {entry["op"]: entry for entry in published["ops"]["ops"]}
    whole = _validator(published["ops"]["recipe_schema"])
    openapi = published["openapi"]
    generated = _validator(openapi["components"]["schemas"]["Recipe"], openapi)
    failures = []
    for where, document in CORPUS:
        failures += [f"{where}: recipe_schema {p}" for p in _problems(whole, document)]
        failures += [f"{where}: openapi Recipe {p}" for p in _problems(generated, document)]
        for op in document["ops"]:
            own = _validator(ops[op["op"]]["schema"])
            failures += [f"{where}: {op['op']} schema {p}" for p in _problems(own, op)]
    assert failures == []


def test_stored_records_validate_against_the_canonical_schemas(published):
    ops = {entry["op"]: entry for entry in published["ops"]["ops"]}
    openapi = published["openapi"]
    canonical = _validator(openapi["components"]["schemas"]["RecipeCanonical"], openapi)
    failures = []
    for where, document in CORPUS:
        stored = json.loads(json.dumps(canonical_document(parse_recipe(document))))
        failures += [f"{where}: {p}" for p in _problems(canonical, stored)]
        for op in stored["ops"]:
            own = _validator(ops[op["op"]]["canonical_schema"])
            failures += [f"{where}: {op['op']} {p}" for p in _problems(own, op)]
    assert failures == []
    # the canonical form is the expanded one: a shorthand is not canonical
    rotate = _validator(ops["rotate"]["canonical_schema"])
    assert _problems(rotate, {"op": "rotate", "degrees": 30})
    assert not _problems(_validator(ops["rotate"]["schema"]), {"op": "rotate", "degrees": 30})


def test_what_the_input_schema_refuses_the_server_refuses_too(published):
    whole = _validator(published["ops"]["recipe_schema"])
    for bad in (
        {"ops": [{"op": "rotate", "degrees": [1, 2, 3]}]},
        {"ops": [{"op": "resize", "size": "big"}]},
        {"ops": [{"op": "crop", "size": 32, "unknown": 1}]},
        {"ops": [{"op": "no_such_op"}]},
        {"ops": [], "output": {"fill": [1, 2, 3, 4, 5]}},
    ):
        assert _problems(whole, bad), bad
        with pytest.raises(InvalidRecipe):
            parse_recipe(bad)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=recipes())
def test_generated_recipes_the_server_accepts_validate(document):
    try:
        parse_recipe(document)
    except InvalidRecipe:
        return
    assert _problems(_validator(recipe_json_schema()), document) == []


def test_the_served_schema_is_the_in_process_one(published):
    assert published["ops"]["recipe_schema"] == json.loads(json.dumps(recipe_json_schema()))
