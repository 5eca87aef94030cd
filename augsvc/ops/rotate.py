"""rotate: about the image centre by an angle drawn uniformly from ``degrees``."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from augsvc.maths import geometry
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, GeometricOp, Params, gated
from augsvc.ops.fields import Degrees
from augsvc.ops.registry import register


@register
class Rotate(GeometricOp):
    """Rotate about the image centre by an angle drawn uniformly from ``degrees``.

    Positive angles turn counter-clockwise as displayed (torchvision and Kornia agree).
    """

    op: Literal["rotate"] = "rotate"
    degrees: Degrees = Field(description="Number d for [-d, d], or [min, max] in degrees.")

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slot 1: angle."""
        on = self.applied(draws)
        return {"applied": on, "angle": gated(draws.uniform(1, *self.degrees), on, 0.0)}

    def matrix(self, params: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
        h, w = canvas
        return geometry.rotation(params["angle"], (w - 1) / 2, (h - 1) / 2), canvas
