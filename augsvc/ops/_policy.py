"""What the augmentation policies share: torchvision's op tables, written out.

A policy's table lists its ops as torchvision names them (``ShearX``, ``Color``, ...),
each an augsvc op with the draw slot its magnitude goes to and the magnitude of each
bin. The table is a field of the policy, filled in from the policy's parameters by
the validator, so the canonical form (and the digest) of a recipe pins the exact op
table it ran with; a table sent back must be the one the parameters give.

Values are torchvision's: its linspaces are computed in float32 as it does, ShearX's
magnitude is turned into degrees (``degrees(atan(m))``), translations are truncated
to whole pixels, and ``value = base + sign * magnitude`` (factor ops have base 1).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    SerializeAsAny,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from augsvc.maths.rng import Draws
from augsvc.ops._composite import OP_DOCUMENT, CompositeOp, Selection, parse_op
from augsvc.ops._slots import SlotLayout
from augsvc.ops.base import Canvas, Op

Space = Literal["rand_augment", "trivial_augment_wide", "auto_augment", "augmix"]


class Entry(BaseModel):
    """One op of a policy's table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    op: Annotated[
        SerializeAsAny[Op] | None, WithJsonSchema({"anyOf": [OP_DOCUMENT, {"type": "null"}]})
    ]  # None: Identity
    slot: int | None = None  # the op's draw slot the magnitude is handed to
    magnitudes: tuple[float, ...] = ()  # one per bin; empty: no magnitude
    signed: bool = False
    base: float = 0.0
    of: Literal["width", "height"] | None = None  # magnitudes as fractions of the canvas
    whole: bool = False  # truncated to whole pixels (torchvision's int())

    @field_validator("op", mode="before")
    @classmethod
    def _op(cls, v: Any) -> Op | None:
        return None if v is None else parse_op(v)

    def values(self, bins: np.ndarray, signs: np.ndarray, canvas: Canvas) -> np.ndarray:
        """The value handed to the op per sample, for its bin and sign (+1 / -1)."""
        m = np.asarray(self.magnitudes, dtype=np.float64)[np.clip(bins, 0, None)]
        if self.of is not None:
            m = m * (canvas[1] if self.of == "width" else canvas[0])
        v = self.base + np.where(self.signed, signs, 1.0) * m
        return np.trunc(v) if self.whole else v


def _linspace(lo: float, hi: float, n: int) -> tuple[float, ...]:
    return tuple(float(v) for v in torch.linspace(lo, hi, n))


def _shear_degrees(hi: float, n: int) -> tuple[float, ...]:
    return tuple(math.degrees(math.atan(m)) for m in _linspace(0.0, hi, n))


def _posterize(top: int, n: int, span: int) -> tuple[float, ...]:
    return tuple(float(v) for v in (top - (torch.arange(n) / ((n - 1) / span))).round().int())


def space(kind: Space, n: int) -> tuple[Entry, ...]:
    """torchvision's augmentation space of a policy for ``n`` magnitude bins, in its
    order (RandAugment's and TrivialAugmentWide's start with Identity)."""
    wide = kind == "trivial_augment_wide"
    shear = 0.99 if wide else 0.3
    factor = 0.99 if wide else 0.9
    if kind == "augmix":
        tx: dict[str, Any] = {"magnitudes": _linspace(0.0, 1 / 3, n), "of": "width"}
        ty: dict[str, Any] = {"magnitudes": _linspace(0.0, 1 / 3, n), "of": "height"}
    elif wide:
        tx = ty = {"magnitudes": _linspace(0.0, 32.0, n)}
    else:
        tx = {"magnitudes": _linspace(0.0, 150.0 / 331.0, n), "of": "width"}
        ty = {"magnitudes": _linspace(0.0, 150.0 / 331.0, n), "of": "height"}
    corner = [0, 0]
    entries = [
        Entry(name="Identity", op=None),
        Entry(name="ShearX", op=parse_op({"op": "shear", "x": 0, "center": corner}), slot=1,
              magnitudes=_shear_degrees(shear, n), signed=True),
        Entry(name="ShearY", op=parse_op({"op": "shear", "y": 0, "center": corner}), slot=2,
              magnitudes=_shear_degrees(shear, n), signed=True),
        Entry(name="TranslateX", op=parse_op({"op": "translate"}), slot=1, signed=True, whole=True,
              **tx),
        Entry(name="TranslateY", op=parse_op({"op": "translate"}), slot=2, signed=True, whole=True,
              **ty),
        Entry(name="Rotate", op=parse_op({"op": "rotate", "degrees": 0}), slot=1,
              magnitudes=_linspace(0.0, 135.0 if wide else 30.0, n), signed=True),
    ]  # fmt: skip
    colour = [
        Entry(name=name, op=parse_op({"op": op, "factor": 1}), slot=1, base=1.0, signed=True,
              magnitudes=_linspace(0.0, factor, n))
        for name, op in (("Brightness", "brightness"), ("Color", "saturation"),
                         ("Contrast", "contrast"), ("Sharpness", "sharpness"))
    ]  # fmt: skip
    top, span = (4, 4) if kind == "augmix" else (8, 6 if wide else 4)
    tone = [
        Entry(name="Posterize", op=parse_op({"op": "posterize", "bits": 8}), slot=1,
              magnitudes=_posterize(top, n, span)),
        Entry(name="Solarize", op=parse_op({"op": "solarize", "threshold": 255}), slot=1,
              magnitudes=tuple(255.0 * v for v in _linspace(1.0, 0.0, n))),
        Entry(name="AutoContrast", op=parse_op({"op": "autocontrast"})),
        Entry(name="Equalize", op=parse_op({"op": "equalize"})),
    ]  # fmt: skip
    if kind == "auto_augment":
        return (*entries[1:], *colour, *tone, Entry(name="Invert", op=parse_op({"op": "invert"})))
    if kind == "augmix":  # torchvision's order: the partial space, then the colour ops
        return (*entries[1:], *tone, *colour)
    return (*entries, *colour, *tone)


def derived(v: Any, expected: tuple[Entry, ...], info: ValidationInfo) -> tuple[Entry, ...]:
    """A table field: absent means the one the parameters give; present, it must be it."""
    if v is None:
        return expected
    if not isinstance(v, list | tuple) or _entries(v) != expected:
        raise ValueError(
            f"{info.field_name} is derived from the policy's parameters; leave it out "
            "(a recipe's canonical form carries it so the digest pins it)"
        )
    return expected


def _entries(v: list | tuple) -> tuple[Entry, ...] | None:
    """The entries of a table sent back, or None when it is not one."""
    try:
        return tuple(e if isinstance(e, Entry) else Entry.model_validate(e) for e in v)
    except ValueError:  # pydantic's ValidationError is one
        return None


@lru_cache(maxsize=64)
def position_slots(positions: int) -> list[range]:
    """Each position's three slots (op, magnitude bin, sign) after the coin's, laid out
    by :class:`SlotLayout`, which refuses any overlap."""
    layout = SlotLayout()
    layout.take("coin", 0, 1)
    return layout.repeated("position", 1, 3, positions, 3)


class Policy(CompositeOp):
    """A policy: ``positions`` steps, each taking one entry of its table uniformly, with
    a magnitude bin from :meth:`bins` and a sign coin for signed entries. Returned per
    sample and step: ``choice`` (the entry's index in the table, -1 none), ``bin`` (-1
    for entries without a magnitude) and ``value`` (what the op was handed: degrees,
    pixels, factor, bits or threshold)."""

    def table_entries(self) -> tuple[Entry, ...]:
        raise NotImplementedError

    def candidates(self) -> tuple[Op | None, ...]:
        return tuple(e.op for e in self.table_entries())

    def bins(self, draws: Draws, position: int) -> np.ndarray:
        raise NotImplementedError

    def select(self, draws: Draws, canvas: Canvas) -> Selection:
        """slot 0: the policy's coin; per position k, slots 1 + 3k (the op),
        2 + 3k (the magnitude bin, where drawn) and 3 + 3k (the sign)."""
        on = self.applied(draws)
        table = self.table_entries()
        chosen = np.full((draws.n, self.positions), -1, dtype=np.int64)
        bins = np.full((draws.n, self.positions), -1, dtype=np.int64)
        values = np.zeros((draws.n, self.positions))
        fixed: dict[tuple[int, int], dict[int, np.ndarray]] = {}
        for k, step in enumerate(position_slots(self.positions)):
            pick = np.minimum(
                (draws.uniform(step[0]) * len(table)).astype(np.int64), len(table) - 1
            )
            b = self.bins(draws, k)  # from step[1] where drawn
            signs = np.where(draws.uniform(step[2]) < 0.5, -1.0, 1.0)
            chosen[:, k] = np.where(on, pick, -1)
            for j, entry in enumerate(table):
                if entry.op is None or not entry.magnitudes:
                    continue
                v = entry.values(b, signs, canvas)
                here = chosen[:, k] == j
                bins[here, k] = b[here]
                values[here, k] = v[here]
                assert entry.slot is not None
                fixed[(k, j)] = {entry.slot: v}
        record = {"applied": on, "choice": chosen, "bin": bins, "value": values}
        return Selection(chosen=chosen, fixed=fixed, record=record)
