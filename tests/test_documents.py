"""The one parser of user documents: the nesting limit, measured without recursion, agrees
with the real depth of any document, and attacks are refused fast with a 4xx."""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc.documents import MAX_NESTING, check_json_nesting, parse_document
from augsvc.errors import InvalidRecipe, UndecodableImage, ValidationFailed
from augsvc.recipes.documents import read_document
from tests.nasty_documents import NASTY, deep_json, yaml_alias_bomb

# Strings that look like structure: brackets, quotes and escapes inside them must not count.
_TRICKY_TEXT = st.text(alphabet='[]{}"\\ab:,- \n', max_size=12)
_SCALARS = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _TRICKY_TEXT
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY_TEXT, inner, max_size=3),
    max_leaves=40,
)


def depth(value: Any) -> int:
    """Nesting of lists and dicts, the reference (recursive: only for small documents)."""
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


def nest(value: Any, levels: int) -> Any:
    for _ in range(levels):
        value = [value]
    return value


@settings(max_examples=200, deadline=None)
@given(_DOCUMENTS, st.integers(0, 3))
def test_json_nesting_is_measured_exactly(document: Any, limit: int) -> None:
    text = json.dumps(document)
    if depth(document) <= limit:
        check_json_nesting(text, limit)
        assert parse_document(text, "json", limit=limit) == document
    else:
        with pytest.raises(ValidationFailed, match=f"deeper than {limit} levels"):
            parse_document(text, "json", limit=limit)


@settings(max_examples=100, deadline=None)
@given(_DOCUMENTS, st.integers(0, 3), st.sampled_from([True, False]))
def test_yaml_nesting_is_measured_exactly_in_both_styles(
    document: Any, limit: int, flow: bool
) -> None:
    text = yaml.safe_dump(document, default_flow_style=flow)
    if depth(document) <= limit:
        assert parse_document(text, "yaml", limit=limit) == yaml.safe_load(text)
    else:
        with pytest.raises(ValidationFailed, match=f"deeper than {limit} levels"):
            parse_document(text, "yaml", limit=limit)


@pytest.mark.parametrize("syntax", ["json", "yaml"])
def test_the_default_limit_is_inclusive(syntax: str) -> None:
    at_limit = nest(1, MAX_NESTING)
    dump = json.dumps if syntax == "json" else yaml.safe_dump
    assert parse_document(dump(at_limit), syntax) == at_limit  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match=f"MAX_NESTING = {MAX_NESTING}"):
        parse_document(dump([at_limit]), syntax)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(NASTY))
def test_attacks_are_refused_fast_in_bounded_memory(name: str) -> None:
    syntax, document = NASTY[name]
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(InvalidRecipe) as refused:
        read_document(document, syntax)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    words = "anchors and aliases" if "bomb" in name else f"deeper than {MAX_NESTING} levels"
    assert words in refused.value.detail, refused.value.detail
    assert refused.value.status == 422
    assert refused.value.errors[0].loc == ("body",)
    assert elapsed < 1.0, elapsed
    assert peak < 20 * len(document) + 4_000_000, peak  # a few copies of the text at most


def test_yaml_merge_keys_need_aliases_and_are_refused_with_the_line() -> None:
    text = "base: &b {op: hflip}\nops:\n  - <<: *b\n    p: 1.0\n"
    with pytest.raises(ValidationFailed, match="line 1, column 7"):
        parse_document(text, "yaml")


def test_the_error_class_and_field_are_the_callers() -> None:
    with pytest.raises(UndecodableImage) as raised:
        parse_document(deep_json(100), "json", error=UndecodableImage, loc=("body", "targets"))
    assert raised.value.errors[0].loc == ("body", "targets")
    with pytest.raises(InvalidRecipe, match="the 'recipe' part: YAML anchors"):
        read_document(yaml_alias_bomb(), "yaml", source="the 'recipe' part")


def test_brackets_in_strings_and_unterminated_strings_are_not_structure() -> None:
    inside = json.dumps({"note": "[" * 1000 + '\\"{' * 500})
    assert parse_document(inside, "json") == json.loads(inside)
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        parse_document('{"a": "' + "[" * 1000, "json")  # a syntax error, not "too deep"
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        parse_document("]" * 5000 + "[" * 5000, "json")
