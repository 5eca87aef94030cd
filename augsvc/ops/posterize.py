"""posterize: keep the top bits of every channel (torchvision's F.posterize)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from augsvc.maths import tone
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, OpKind, Params, PixelOp, gated
from augsvc.ops.fields import IntOrPair, whole_range
from augsvc.ops.registry import register


@register
class Posterize(PixelOp):
    """Reduce every colour channel to its top ``bits`` bits (``image & mask``), as
    torchvision's ``F.posterize``: exactly its bytes on uint8 pixels."""

    kind: ClassVar[OpKind] = "tone"
    op: Literal["posterize"] = "posterize"
    bits: tuple[int, int] = Field(description="Bits kept, 0..8: n, or [min, max] drawn per sample.")

    @field_validator("bits", mode="before", json_schema_input_type=IntOrPair)
    @classmethod
    def _bits(cls, v: Any) -> tuple[int, int]:
        return whole_range(v, "bits", 0, 8)

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slot 1: bits (uniform over the whole numbers of the range)."""
        on = self.applied(draws)
        lo, hi = self.bits
        bits = np.minimum(np.floor(draws.uniform(1, lo, hi + 1)), hi)
        return {"applied": on, "bits": gated(bits, on, 8.0)}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return tone.posterize(x, params["applied"], params["bits"])
