"""invert: torchvision's F.invert."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from augsvc.maths import tone
from augsvc.ops.base import OpKind, Params, PixelOp
from augsvc.ops.registry import register


@register
class Invert(PixelOp):
    """Invert every colour channel (255 - x), as torchvision's ``F.invert``: exactly
    its bytes on uint8 pixels."""

    kind: ClassVar[OpKind] = "tone"
    op: Literal["invert"] = "invert"

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return tone.invert(x, params["applied"])
