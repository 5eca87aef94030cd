"""hue: turn the HSV hue (torchvision's F.adjust_hue)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator

from augsvc.maths import tone
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, OpKind, Params, PixelOp, gated
from augsvc.ops.fields import NumberOrPair, Pair, value_range
from augsvc.ops.registry import register


@register
class Hue(PixelOp):
    """Turn the hue by ``factor`` turns of the HSV colour wheel (-0.5..0.5), as
    torchvision's ``F.adjust_hue``, through HSV and back: exactly its bytes on uint8
    pixels. (``color_jitter``'s hue is a linear stand-in that fuses into the colour
    map; this one is the non-linear original.) Grey images are kept."""

    kind: ClassVar[OpKind] = "tone"
    working_copies: ClassVar[int] = 12  # HSV planes, their float temporaries and the result
    op: Literal["hue"] = "hue"
    factor: Pair = Field(description="-0.5..0.5: h exactly, or [min, max] drawn per sample.")

    @field_validator("factor", mode="before", json_schema_input_type=NumberOrPair)
    @classmethod
    def _factor(cls, v: Any) -> Pair:
        return value_range(v, "factor", -0.5, 0.5)

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slot 1: factor."""
        on = self.applied(draws)
        return {"applied": on, "factor": gated(draws.uniform(1, *self.factor), on, 0.0)}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return tone.hue(x, params["applied"], params["factor"])
