"""Hostile values for the tests that throw them at the service: huge and non-finite
numbers, 400-digit integers, deep nesting, long strings and wrong types, and the JSON
texts that carry them (some have no Python value that serialises to them)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

HUGE = 10**400

#: Texts that JSON allows (or Python's reader accepts) but no Python value serialises
#: to: each is written into a document in place of its marker string.
RAW = {
    "@@1e400@@": "1e400",
    "@@-1e400@@": "-1e400",
    "@@huge-fraction@@": "1" + "0" * 400 + ".5",
    "@@deep@@": "[" * 100_000 + "]" * 100_000,
    "@@deep-object@@": '{"a":' * 70 + "0" + "}" * 70,
}

#: Ops whose required fields need a value before another field can be tried.
BASES: dict[str, dict[str, Any]] = {
    "rotate": {"degrees": 10},
    "crop": {"size": 8},
    "random_resized_crop": {"size": 8},
    "resize": {"size": 8},
    "pad": {"padding": 1},
    "gaussian_blur": {"kernel_size": 3},
    "posterize": {"bits": 4},
    "solarize": {"threshold": 128},
    "solarize_add": {"add": 10},
    "brightness": {"factor": 1.2},
    "contrast": {"factor": 1.2},
    "saturation": {"factor": 1.2},
    "sharpness": {"factor": 1.2},
    "hue": {"factor": 0.1},
    "one_of": {"ops": [{"op": "hflip"}, {"op": "vflip"}]},
    "some_of": {"ops": [{"op": "hflip"}, {"op": "vflip"}], "n": 1},
    "random_order": {"ops": [{"op": "hflip"}, {"op": "vflip"}]},
    "timm_auto_augment": {"config": "rand-m9-mstd0.5"},
}


def op_document(op: str, field: str | None = None, value: Any = None) -> dict[str, Any]:
    """A valid document of ``op``, with ``field`` set to ``value`` when given."""
    document = {"op": op, **BASES.get(op, {})}
    if field is not None:
        document[field] = value
    return document


def dumps(document: Any) -> bytes:
    """JSON with each RAW marker replaced by its text (NaN and Infinity come out as
    Python writes them, which Python's reader, the server's, accepts)."""
    text = json.dumps(document)
    for marker, raw in RAW.items():
        text = text.replace(json.dumps(marker), raw)
    return text.encode()


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


numbers = st.one_of(
    st.sampled_from([HUGE, -HUGE, 2**63, 2**64, -(2**63) - 1, 10**19, 10**9 + 1, -0.0, 5e-324]),
    st.sampled_from([1e308, -1e308, float("inf"), float("-inf"), float("nan"), 1e-300]),
    st.sampled_from(["@@1e400@@", "@@-1e400@@", "@@huge-fraction@@"]),
    st.integers(min_value=10**15, max_value=10**450),
    st.integers(max_value=-(10**15), min_value=-(10**450)),
    st.floats(allow_nan=True, allow_infinity=True),
)
others = st.one_of(
    st.sampled_from(["@@deep@@", "@@deep-object@@", "x" * 70_000, "", "1e400", "NaN"]),
    st.integers(60, 70).map(nested),
    st.text(max_size=40),
    st.booleans(),
    st.none(),
    st.just({}),
    st.just([]),
    st.dictionaries(st.text(max_size=5), numbers, max_size=2),
)
hostile = st.one_of(numbers, st.lists(numbers, min_size=1, max_size=5), others)
