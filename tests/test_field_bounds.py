"""Every number a recipe holds is bounded by its field type: every field of every
registered op (alone and as a combinator's member) and of the output and targets
options, given a huge or non-finite number, is an InvalidRecipe naming that field,
never an OverflowError or a value the maths would choke on. In process and exhaustive;
tests/test_hostile_inputs.py sends generated values to a real server."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from augsvc.errors import InvalidRecipe
from augsvc.ops import registered
from augsvc.ops.fields import MAX_MAGNITUDE, Number, number
from augsvc.recipes import OutputOptions, digest, parse_recipe
from augsvc.recipes.targets import TargetOptions
from tests.hostile import BASES, HUGE, op_document

#: Values no field may take: each must be refused where it is parsed.
REFUSED = [HUGE, -HUGE, float("inf"), float("-inf"), float("nan"), [0, HUGE], [HUGE] * 4,
           [1, float("nan")], 1e19, [1e19] * 3, [1, -1e300], -(10**300)]  # fmt: skip


def op_fields() -> list[tuple[str, str]]:
    return [
        (cls.name(), name)
        for cls in registered()
        for name in cls.model_json_schema()["properties"]
        if name not in ("op", "table")  # a policy's table is compared whole, never used
    ]


def member_ops() -> set[str]:
    return {
        cls.name()
        for cls in registered()
        if cls.kind not in ("combinator", "policy", "normalize") and not cls.changes_size
    }


def refused_at(document: dict[str, Any], prefix: str) -> None:
    """parse_recipe refuses ``document`` with a field error under ``prefix``."""
    with pytest.raises(InvalidRecipe) as raised:
        parse_recipe(document)
    paths = [e.path for e in raised.value.errors]
    assert any(p.startswith(prefix) for p in paths), (prefix, paths)


def test_every_op_with_required_fields_has_a_base():
    for cls in registered():
        required = set(cls.model_json_schema().get("required", [])) - {"op"}
        assert not required or cls.name() in BASES, (cls.name(), required)
        parse_recipe({"ops": [op_document(cls.name())]})  # the base itself is valid


@pytest.mark.parametrize(("op", "field"), op_fields())
def test_an_op_field_refuses_huge_and_non_finite_numbers(op, field):
    for value in REFUSED:
        refused_at({"ops": [op_document(op, field, value)]}, f"ops[0].{field}")
        if op in member_ops():
            member = {"op": "one_of", "ops": [op_document(op, field, value)]}
            refused_at({"ops": [member]}, "ops[0].ops")


@pytest.mark.parametrize(
    ("model", "field"),
    [("output", f) for f in OutputOptions.model_fields]
    + [("targets", f) for f in TargetOptions.model_fields],
)
def test_an_option_refuses_huge_and_non_finite_numbers(model, field):
    for value in REFUSED:
        document = {"ops": [{"op": "hflip"}], model: {field: value}}
        if field == "flip_pairs":
            document[model] = {field: [value if isinstance(value, list) else [0, value]]}
        refused_at(document, f"{model}.{field}")


def test_accepted_extremes_still_digest():
    """The largest values that pass are ones the maths can hold."""
    for document in (
        {"ops": [{"op": "one_of", "ops": [{"op": "hflip"}], "weights": [MAX_MAGNITUDE]}]},
        {"ops": [{"op": "translate", "x": 16384}]},
        {"ops": [{"op": "normalize", "mean": [-MAX_MAGNITUDE], "std": [MAX_MAGNITUDE]}]},
    ):
        assert digest(parse_recipe(document)).startswith("sha256:")


class _Model(BaseModel):
    value: Number


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (HUGE, "about 401 digits"),
        (-(10**10), "-10000000000"),
        (float("nan"), "finite"),
        (True, "a boolean"),
        ("1", "a string"),
    ],
)
def test_number_refuses_with_a_message_that_says_why(raw, words):
    with pytest.raises(ValueError, match=words):
        number(raw)
    with pytest.raises(ValidationError):
        _Model(value=raw)
    assert _Model(value=int(MAX_MAGNITUDE)).value == MAX_MAGNITUDE


@pytest.mark.parametrize(
    ("op", "field", "value"),
    [
        ("affine", "scale", [1e-300, 1.0]),
        ("affine", "scale", [1.0, 1e7]),
        ("random_resized_crop", "ratio", [5e-324, 1.0]),
        ("random_erasing", "ratio", [1.0, 1e9]),
        ("random_erasing", "scale", [1e-12, 0.5]),
        ("gaussian_blur", "sigma", [1e-300, 1.0]),
        ("normalize", "std", [1e-300]),
    ],
)
def test_a_positive_factor_that_would_divide_into_infinity_is_refused(op, field, value):
    """A scale, ratio, sigma or std of 1e-300 passes "> 0" and then turns a matrix or a
    kernel into infinities and NaNs (a 200 with garbage): they are bounded too."""
    document = op_document(op, field, value)
    if op == "normalize":
        document["mean"] = [0.5]
    refused_at({"ops": [document]}, f"ops[0].{field}")
