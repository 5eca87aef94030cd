"""crop: a fixed size at the centre or at a random position."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from augsvc.maths import geometry
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, GeometricOp, Params, Size
from augsvc.ops.fields import SizeInput, size_hw
from augsvc.ops.registry import register


@register
class Crop(GeometricOp):
    """Crop to ``size`` at the centre or at a uniformly random position; a canvas smaller
    than the crop is padded (with the output's padding mode)."""

    changes_size = True
    op: Literal["crop"] = "crop"
    size: tuple[int, int] = Field(description="Crop size: n or [height, width].")
    position: Literal["center", "random"] = "center"

    _size = field_validator("size", mode="before", json_schema_input_type=SizeInput)(
        lambda cls, v: size_hw(v)
    )

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slots 1-2: vertical and horizontal position (random crops only)."""
        h, w = canvas
        ch, cw = self.size
        if self.position == "center":
            top, left = np.round((h - ch) / 2), np.round((w - cw) / 2)
        else:
            top = np.where(
                h >= ch, np.floor(draws.uniform(1) * (h - ch + 1)), np.round((h - ch) / 2)
            )
            left = np.where(
                w >= cw, np.floor(draws.uniform(2) * (w - cw + 1)), np.round((w - cw) / 2)
            )
        return {"top": top, "left": left}

    def matrix(self, params: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
        n = len(canvas[0])
        oh, ow = (np.full(n, float(s)) for s in self.size)
        return geometry.translation(-params["left"], -params["top"]), (oh, ow)

    def fixed_size(self, size: Size | None) -> Size | None:
        return self.size
