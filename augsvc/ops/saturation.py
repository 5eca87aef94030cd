"""saturation: blend with the grey image (torchvision's F.adjust_saturation)."""

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
class Saturation(PixelOp):
    """Blend every pixel with its grey value by ``factor`` (0 grey, 1 unchanged), as
    torchvision's ``F.adjust_saturation``, whose grey is floored before the blend and
    whose result is truncated: fused into a colour map (as ``color_jitter``'s is) it
    would sit up to two grey levels above torchvision's bytes at low factors, so this
    op runs torchvision's integer kernel instead. Grey images are kept."""

    kind: ClassVar[OpKind] = "tone"
    op: Literal["saturation"] = "saturation"
    factor: Factor = Field(description="x exactly, or [min, max] drawn per sample (>= 0).")

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slot 1: factor."""
        on = self.applied(draws)
        return {"applied": on, "factor": gated(draws.uniform(1, *self.factor), on, 1.0)}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return tone.saturation(x, params["applied"], params["factor"])
