"""equalize: torchvision's F.equalize."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from augsvc.maths import tone
from augsvc.ops.base import OpKind, Params, PixelOp
from augsvc.ops.registry import register


@register
class Equalize(PixelOp):
    """Equalise each colour channel's histogram with PIL's lookup table, as
    torchvision's ``F.equalize``: exactly its bytes on uint8 pixels. After a warp it
    sees the fill the warp brought in, as torchvision's does after a rotation."""

    kind: ClassVar[OpKind] = "tone"
    working_copies: ClassVar[int] = 11  # per-channel histograms' lookups, gathered per pixel
    op: Literal["equalize"] = "equalize"

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return tone.equalize(x, params["applied"])
