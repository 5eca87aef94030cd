"""pad: grow the canvas by fixed borders."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import field_validator

from augsvc.maths import geometry
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, GeometricOp, Params, Size
from augsvc.ops.registry import register


@register
class Pad(GeometricOp):
    """Pad the borders: n on every side, [horizontal, vertical], or [left, top, right, bottom]."""

    changes_size = True
    op: Literal["pad"] = "pad"
    padding: tuple[int, int, int, int]

    @field_validator(
        "padding",
        mode="before",
        json_schema_input_type=int | tuple[int, int] | tuple[int, int, int, int],
    )
    @classmethod
    def _padding(cls, v: Any) -> tuple[int, int, int, int]:
        if isinstance(v, int) and not isinstance(v, bool):
            v = [v] * 4
        if isinstance(v, list | tuple) and len(v) == 2:
            v = [v[0], v[1], v[0], v[1]]
        if not isinstance(v, list | tuple) or len(v) != 4:
            raise ValueError("padding must be n, [h, v] or [left, top, right, bottom]")
        if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 4096 for x in v):
            raise ValueError("padding values must be integers in 0..4096")
        return tuple(v)

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        return {}

    def matrix(self, params: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
        h, w = canvas
        n = len(h)
        left, top, right, bottom = self.padding
        m = geometry.translation(np.full(n, float(left)), np.full(n, float(top)))
        return m, (h + top + bottom, w + left + right)

    def fixed_size(self, size: Size | None) -> Size | None:
        left, top, right, bottom = self.padding
        return None if size is None else (size[0] + top + bottom, size[1] + left + right)
