"""autocontrast: torchvision's F.autocontrast."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from augsvc.maths import tone
from augsvc.ops.base import OpKind, Params, PixelOp
from augsvc.ops.registry import register


@register
class Autocontrast(PixelOp):
    """Stretch each colour channel's [min, max] to [0, 255] (a flat channel is kept),
    as torchvision's ``F.autocontrast``: exactly its bytes on uint8 pixels."""

    kind: ClassVar[OpKind] = "tone"
    op: Literal["autocontrast"] = "autocontrast"

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return tone.autocontrast(x, params["applied"])
