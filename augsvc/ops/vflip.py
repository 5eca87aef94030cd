"""vflip: mirror top-bottom."""

from __future__ import annotations

from typing import Literal

import numpy as np

from augsvc.maths import geometry
from augsvc.ops.base import Canvas, GeometricOp, Params
from augsvc.ops.fields import Probability
from augsvc.ops.registry import register


@register
class VFlip(GeometricOp):
    """Mirror top-bottom."""

    op: Literal["vflip"] = "vflip"
    p: Probability = 0.5

    def matrix(self, params: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
        return geometry.vflip(canvas[0], params["applied"]), canvas
