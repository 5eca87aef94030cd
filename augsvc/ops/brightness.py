"""brightness: one factor, fused into the colour map."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from augsvc.maths import colour
from augsvc.maths.colour import ColourMap
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, ColourOp, Params, gated
from augsvc.ops.fields import Factor
from augsvc.ops.registry import register


@register
class Brightness(ColourOp):
    """Scale every colour channel by ``factor`` (torchvision's
    ``F.adjust_brightness``). It fuses into the colour map with its neighbours, so the
    pixels are touched and rounded once where torchvision truncates after each op:
    within one grey level of torchvision's bytes."""

    op: Literal["brightness"] = "brightness"
    factor: Factor = Field(description="x exactly, or [min, max] drawn per sample (>= 0).")

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slot 1: factor."""
        on = self.applied(draws)
        return {"applied": on, "factor": gated(draws.uniform(1, *self.factor), on, 1.0)}

    def colour(self, params: Params, cmap: ColourMap) -> None:
        cmap.linear(colour.brightness(params["factor"]))
