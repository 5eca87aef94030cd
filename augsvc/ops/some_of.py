"""some_of: each sample takes n of the listed ops, in random or listed order."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from augsvc.maths.rng import Draws
from augsvc.ops._composite import CompositeOp, Members, Selection, permutations
from augsvc.ops.base import Canvas, Op
from augsvc.ops.registry import register


@register
class SomeOf(CompositeOp):
    """Each sample takes ``n`` different ops of ``ops`` (every n-subset equally likely),
    in a random order, or in the order listed when ``random_order`` is false; each
    op's own ``p`` then applies. The returned ``choice`` (N, n) lists the indices
    into ``ops`` each sample took, in the order they acted."""

    op: Literal["some_of"] = "some_of"
    candidates_field: ClassVar[str] = "ops"
    ops: Members
    n: int = Field(ge=0, le=64, description="How many of the ops each sample takes (<= len(ops)).")
    random_order: bool = True

    @field_validator("n")
    @classmethod
    def _n(cls, v: int, info: ValidationInfo) -> int:
        ops = info.data.get("ops")
        if ops is not None and v > len(ops):
            raise ValueError(f"n is {v} but there are only {len(ops)} ops")
        return v

    def candidates(self) -> tuple[Op | None, ...]:
        return self.ops

    @property
    def positions(self) -> int:
        return self.n

    def select(self, draws: Draws, canvas: Canvas) -> Selection:
        """slot 0: the combinator's coin; slots 1..len(ops): the ordering."""
        on = self.applied(draws)
        picked = permutations(draws, 1, len(self.ops))[:, : self.n]
        if not self.random_order:
            picked = np.sort(picked, axis=1)
        choice = np.where(on[:, None], picked, -1)
        return Selection(chosen=choice, record={"applied": on, "choice": choice})
