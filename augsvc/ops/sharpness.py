"""sharpness: blend with PIL's smoothing filter (torchvision's F.adjust_sharpness)."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field

from augsvc.maths import tone
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, OpKind, Params, PixelOp, gated
from augsvc.ops.fields import Factor
from augsvc.ops.registry import register


@register
class Sharpness(PixelOp):
    """Sharpen or soften, as torchvision's ``F.adjust_sharpness``: factor 0 gives PIL's
    smoothed image, 1 the original, 2 twice the difference (the one-pixel border is
    kept): exactly its bytes on uint8 pixels."""

    kind: ClassVar[OpKind] = "tone"
    op: Literal["sharpness"] = "sharpness"
    factor: Factor = Field(description="x exactly, or [min, max] drawn per sample (>= 0).")

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slot 1: factor."""
        on = self.applied(draws)
        return {"applied": on, "factor": gated(draws.uniform(1, *self.factor), on, 1.0)}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return tone.sharpness(x, params["applied"], params["factor"])
