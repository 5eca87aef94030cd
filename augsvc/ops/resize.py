"""resize: to [h, w] exactly, or the shorter side to n (aspect kept)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from augsvc.maths import geometry
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, GeometricOp, Params, Size
from augsvc.ops.fields import MAX_SIDE, size_hw
from augsvc.ops.registry import register


@register
class Resize(GeometricOp):
    """Resize to ``size``: [h, w] exactly, or an int for the shorter side (aspect kept)."""

    changes_size = True
    op: Literal["resize"] = "resize"
    size: tuple[int, int] | int = Field(description="[height, width], or shorter side length.")

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: Any) -> tuple[int, int] | int:
        if isinstance(v, int) and not isinstance(v, bool):
            if not 0 < v <= MAX_SIDE:
                raise ValueError(f"size must be in 1..{MAX_SIDE}, got {v}")
            return v
        return size_hw(v)

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        return {}

    def matrix(self, params: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
        h, w = canvas
        n = len(h)
        if isinstance(self.size, int):  # shorter side, as torchvision (long side floored)
            s = float(self.size)
            oh = np.where(h <= w, s, np.floor(s * h / w))
            ow = np.where(h <= w, np.floor(s * w / h), s)
        else:
            oh, ow = (np.full(n, float(v)) for v in self.size)
        z = np.zeros(n)
        return geometry.crop_resize(z, z, h, w, oh, ow), (oh, ow)

    def fixed_size(self, size: Size | None) -> Size | None:
        return self.size if isinstance(self.size, tuple) else None
