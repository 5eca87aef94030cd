"""perspective: torchvision's RandomPerspective, as a homography."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from augsvc.maths import geometry
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, GeometricOp, Params
from augsvc.ops.fields import Probability
from augsvc.ops.registry import register

_INWARD = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float64)


@register
class Perspective(GeometricOp):
    """Random perspective as torchvision's RandomPerspective: each corner moves inwards
    by up to ``distortion_scale`` times half the width/height."""

    working_copies: ClassVar[int] = 5  # a homography's grid is computed through float64 rows
    op: Literal["perspective"] = "perspective"
    distortion_scale: float = Field(default=0.5, ge=0.0, le=1.0)
    p: Probability = 0.5

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slots 1-8: inward shift of each corner (x, y) as a fraction of the bound."""
        h, w = canvas
        # a one-pixel line or a single pixel has no quadrilateral to distort: left alone
        on = self.applied(draws) & (h >= 2) & (w >= 2)
        bx, by = self.distortion_scale * (w // 2), self.distortion_scale * (h // 2)
        shift = np.stack([draws.uniform(1 + k) for k in range(8)], 1).reshape(-1, 4, 2)
        shift = shift * np.stack([bx, by], -1)[:, None, :] * _INWARD
        return {"applied": on, "shift": np.where(on[:, None, None], shift, 0.0)}

    def matrix(self, params: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
        h, w = canvas
        m = geometry.eye(len(h))
        solvable = (h >= 2) & (w >= 2)  # a line's corners coincide: no homography
        start = geometry.corners(h[solvable], w[solvable])
        m[solvable] = geometry.homography(start, start + params["shift"][solvable])
        return m, canvas
