"""Parameter fields shared by the ops: finite numbers, ranges, sizes.

Each validator accepts the shorthand users write (``30`` for ``[-30, 30]``) and returns
one canonical form, so two recipes that mean the same thing serialise alike and share
a digest.

Every number a recipe holds is bounded here, where it is parsed: JSON and YAML hand
over integers of any length and floats up to infinity, and a 400-digit integer that
reaches ``float()``, numpy or a C library raises OverflowError (a 500) or poisons a
matrix. the :func:`number` validator and the :data:`Number` type refuse anything
beyond :data:`MAX_MAGNITUDE` as a field error instead.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

Probability = Annotated[float, Field(ge=0.0, le=1.0, description="Chance the op is applied.")]
Pair = tuple[float, float]

# The input forms: what a recipe may say before a validator turns it into the canonical
# form. Each ``mode="before"`` validator that accepts a shorthand declares one as its
# ``json_schema_input_type``, so the published JSON schema (validation mode) accepts what
# the server accepts, and the serialization-mode schema stays the canonical form of
# stored records.
#: ``x`` or ``[min, max]``.
NumberOrPair = float | tuple[float, float]
#: ``n`` or ``[height, width]``.
SizeInput = int | tuple[int, int]
#: A whole ``n`` or ``[min, max]``.
IntOrPair = int | tuple[int, int]
#: A grey value, or 1, 3 or 4 channel values.
PixelInput = int | Annotated[list[int], Field(min_length=1, max_length=4)]
#: Largest side an op may produce; a recipe asking for more is a mistake or an attack.
MAX_SIDE = 16384
#: Largest magnitude of any number in a recipe: far beyond every meaningful parameter
#: (pixels, degrees, factors, weights), far below what overflows float32 maths.
MAX_MAGNITUDE = 1e9
#: The range of a positive factor (a scale, an aspect ratio, a sigma, a std): what lies
#: outside it turns into infinity or zero once divided or squared.
MIN_POSITIVE = 1e-6
MAX_FACTOR = 1e6

_JSON_KINDS = {dict: "an object", list: "a list", tuple: "a list", str: "a string",
               bool: "a boolean", type(None): "null"}  # fmt: skip


def number(x: Any) -> float:
    """A finite JSON number within ±MAX_MAGNITUDE. Booleans, numeric strings and
    NaN/Infinity (which Python's JSON and YAML parsers accept) are refused: one NaN would
    poison every matrix. An integer is compared before it is converted, so one too long
    for a float is refused rather than raising OverflowError."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"expected a number, got {_JSON_KINDS.get(type(x), type(x).__name__)}")
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"expected a finite number, got {x}")
    if abs(x) > MAX_MAGNITUDE:
        raise ValueError(f"expected a number within ±{int(MAX_MAGNITUDE):,}, got {_shown(x)}")
    return float(x)


def _shown(x: int | float) -> str:
    """A number for a message: a huge integer by its length (printing one may itself
    fail, past Python's 4300-digit limit)."""
    if isinstance(x, int) and abs(x) > 10**15:
        return f"an integer of about {int(abs(x).bit_length() * 0.30103) + 1} digits"
    return repr(x)


#: A finite number within ±MAX_MAGNITUDE: the type of every float field without a range
#: of its own (pydantic's ``float`` takes anything up to 1.8e308, which float32 maths
#: turns into infinity).
Number = Annotated[
    float,
    BeforeValidator(number, json_schema_input_type=float),
    Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE),
]


def _pair(v: Any) -> Any:
    """Accept [a, b] or (a, b) and return a tuple of finite floats; scalars are checked
    and left to the caller."""
    if isinstance(v, list | tuple):
        if len(v) != 2:
            raise ValueError("expected a number or a [min, max] pair")
        return (number(v[0]), number(v[1]))
    if isinstance(v, int | float) and not isinstance(v, bool):
        number(v)
    return v


def _is_scalar(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def symmetric_range(v: Any, *, name: str = "value") -> Pair:
    """A number x means [-x, x]; a pair is taken as [min, max]."""
    v = _pair(v)
    if _is_scalar(v):
        if v < 0:
            raise ValueError(f"{name} must be >= 0 when given as one number")
        return (-float(v), float(v))
    if not isinstance(v, tuple):
        raise ValueError("expected a number or a [min, max] pair")
    return v


def factor_range(v: Any) -> Pair:
    """A number x means [max(0, 1 - x), 1 + x], as torchvision's ColorJitter."""
    v = _pair(v)
    if _is_scalar(v):
        if v < 0:
            raise ValueError("must be >= 0 when given as one number")
        return (max(0.0, 1.0 - float(v)), 1.0 + float(v))
    if not isinstance(v, tuple):
        raise ValueError("expected a number or a [min, max] pair")
    return v


def ordered(v: Pair, *, lo: float | None = None, hi: float | None = None) -> Pair:
    a, b = v
    if a > b:
        raise ValueError(f"min {a} is greater than max {b}")
    if lo is not None and a < lo:
        raise ValueError(f"min {a} is below {lo}")
    if hi is not None and b > hi:
        raise ValueError(f"max {b} is above {hi}")
    return v


def positive_range(v: Any, name: str, *, hi: float = MAX_FACTOR) -> Pair:
    """A [min, max] pair with MIN_POSITIVE <= min <= max <= hi: a scale, ratio or sigma
    of 1e-300 passes "> 0" and then divides into infinity (a NaN matrix, an empty box)."""
    v = _pair(v)
    if not isinstance(v, tuple):
        raise ValueError(f"{name} must be a [min, max] pair")
    ordered(v, hi=hi)
    if v[0] <= 0:
        raise ValueError(f"{name} must be > 0")
    if v[0] < MIN_POSITIVE:
        raise ValueError(f"{name} must be >= {MIN_POSITIVE:g}, got {v[0]:g}")
    return v


def size_hw(v: Any) -> tuple[int, int]:
    """An int n means (n, n); a pair is (height, width). Both must be positive."""
    if isinstance(v, bool):
        raise ValueError("size must be a positive integer or [height, width]")
    if isinstance(v, int):
        v = (v, v)
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise ValueError("size must be a positive integer or [height, width]")
    h, w = v
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (h, w)):
        raise ValueError("size must hold integers")
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive, got [{h}, {w}]")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise ValueError(f"size [{h}, {w}] exceeds {MAX_SIDE}")
    return (h, w)


def pixel_values(v: Any, name: str) -> tuple[int, ...]:
    """An int or a list of 1, 3 or 4 ints in 0..255 (grey, RGB, RGBA)."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list | tuple) or len(v) not in (1, 3, 4):
        raise ValueError(f"{name} must be an int or a list of 1, 3 or 4 ints")
    if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255 for x in v):
        raise ValueError(f"{name} entries must be integers in 0..255")
    return tuple(v)


def _degrees(v: Any) -> Pair:
    return ordered(symmetric_range(v, name="degrees"), lo=-360, hi=360)


#: An angle range in degrees: d for [-d, d], or [min, max], within [-360, 360].
Degrees = Annotated[Pair, BeforeValidator(_degrees, json_schema_input_type=NumberOrPair)]
#: A box's area as a fraction of the image, [min, max] in (0, 1] (torchvision's ``scale``).
AreaFraction = Annotated[Pair, BeforeValidator(lambda v: positive_range(v, "scale", hi=1.0))]
#: An aspect-ratio range [min, max] > 0 (torchvision's ``ratio``).
AspectRatio = Annotated[Pair, BeforeValidator(lambda v: positive_range(v, "ratio"))]


def value_range(v: Any, name: str, lo: float, hi: float) -> Pair:
    """A number x means exactly x (torchvision's functional argument); a pair is a
    [min, max] range drawn from uniformly. Both within [lo, hi]."""
    v = _pair(v)
    if _is_scalar(v):
        v = (float(v), float(v))
    if not isinstance(v, tuple):
        raise ValueError(f"{name} must be a number or a [min, max] pair")
    return ordered(v, lo=lo, hi=hi)


def whole_range(v: Any, name: str, lo: int, hi: int) -> tuple[int, int]:
    """An integer n means exactly n; [a, b] draws an integer in a..b uniformly."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = (v, v)
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise ValueError(f"{name} must be an integer or a [min, max] pair of integers")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise ValueError(f"{name} must hold integers")
    a, b = ordered((v[0], v[1]), lo=lo, hi=hi)
    return (int(a), int(b))


#: A multiplicative factor: x exactly, or [min, max]; 0 <= factor <= 100.
Factor = Annotated[
    Pair,
    BeforeValidator(
        lambda v: value_range(v, "factor", 0.0, 100.0), json_schema_input_type=NumberOrPair
    ),
]
