"""solarize: invert the values at or above a threshold (torchvision's F.solarize)."""

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
class Solarize(PixelOp):
    """Invert every channel value at or above ``threshold`` (0..255), as torchvision's
    ``F.solarize``: exactly its bytes on uint8 pixels."""

    kind: ClassVar[OpKind] = "tone"
    op: Literal["solarize"] = "solarize"
    threshold: Pair = Field(description="0..255: t, or [min, max] drawn per sample.")

    @field_validator("threshold", mode="before", json_schema_input_type=NumberOrPair)
    @classmethod
    def _threshold(cls, v: Any) -> Pair:
        return value_range(v, "threshold", 0.0, 255.0)

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slot 1: threshold."""
        on = self.applied(draws)
        return {"applied": on, "threshold": gated(draws.uniform(1, *self.threshold), on, 256.0)}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return tone.solarize(x, params["applied"], params["threshold"])
