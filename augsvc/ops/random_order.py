"""random_order: every listed op, in an order drawn per sample."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from augsvc.maths.rng import Draws
from augsvc.ops._composite import CompositeOp, Members, Selection, permutations
from augsvc.ops.base import Canvas, Op
from augsvc.ops.registry import register


@register
class RandomOrder(CompositeOp):
    """Every op of ``ops`` (each with its own ``p``), in an order drawn per sample
    (all orders equally likely). The returned ``choice`` (N, len(ops)) is the order.
    The geometric ops compose, in each sample's order, into its one warp, which runs
    before the others (see the design notes on policies and fusion)."""

    op: Literal["random_order"] = "random_order"
    candidates_field: ClassVar[str] = "ops"
    ops: Members = Field(max_length=16)

    def candidates(self) -> tuple[Op | None, ...]:
        return self.ops

    @property
    def positions(self) -> int:
        return len(self.ops)

    def select(self, draws: Draws, canvas: Canvas) -> Selection:
        """slot 0: the combinator's coin; slots 1..len(ops): the order."""
        on = self.applied(draws)
        order = np.where(on[:, None], permutations(draws, 1, len(self.ops)), -1)
        return Selection(chosen=order, record={"applied": on, "choice": order})
