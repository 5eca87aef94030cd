"""one_of: each sample takes one of the listed ops."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from augsvc.maths.rng import Draws
from augsvc.ops._composite import CompositeOp, Members, Selection, categorical
from augsvc.ops.base import Canvas, Op
from augsvc.ops.fields import number
from augsvc.ops.registry import register


@register
class OneOf(CompositeOp):
    """Each sample takes one of ``ops``, chosen with probability proportional to
    ``weights`` (equal when absent), then that op's own ``p`` applies. The returned
    ``choice`` (N, 1) says which (-1: the combinator's own ``p`` skipped it)."""

    op: Literal["one_of"] = "one_of"
    candidates_field: ClassVar[str] = "ops"
    ops: Members
    weights: tuple[float, ...] | None = Field(
        default=None, description="One weight >= 0 per op (not all 0); equal when absent."
    )

    @field_validator("weights", mode="before")
    @classmethod
    def _weights(cls, v: Any, info: ValidationInfo) -> tuple[float, ...] | None:
        if v is None:
            return None
        if not isinstance(v, list | tuple):
            raise ValueError("weights must be a list of numbers")
        w = tuple(number(x) for x in v)
        ops = info.data.get("ops")
        if ops is not None and len(w) != len(ops):
            raise ValueError(f"expected {len(ops)} weights (one per op), got {len(w)}")
        if any(x < 0 for x in w) or sum(w) <= 0:
            raise ValueError("weights must be >= 0 and not all 0")
        return w

    def candidates(self) -> tuple[Op | None, ...]:
        return self.ops

    @property
    def positions(self) -> int:
        return 1

    def select(self, draws: Draws, canvas: Canvas) -> Selection:
        """slot 0: the combinator's coin; slot 1: the choice."""
        on = self.applied(draws)
        weights = self.weights or (1.0,) * len(self.ops)
        choice = np.where(on, categorical(draws.uniform(1), np.array(weights)), -1)
        column = choice.reshape(-1, 1).copy()  # fresh strides: a [:, None] view has a 0 one
        return Selection(chosen=column, record={"applied": on, "choice": column})
