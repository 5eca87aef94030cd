"""shear: along x and/or y about a centre (torchvision's F.affine with only shear)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from augsvc.maths import geometry
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, GeometricOp, Params, gated
from augsvc.ops.fields import NumberOrPair, Pair, _pair, number, ordered, symmetric_range
from augsvc.ops.registry import register


def _angle(v: Any) -> Pair:
    return ordered(symmetric_range(v, name="shear"), lo=-89, hi=89)


@register
class Shear(GeometricOp):
    """Shear by ``x`` and ``y`` degrees, as torchvision's ``F.affine(shear=[x, y])``:
    x first, then y, about ``center`` (torchvision's: pixel-edge coordinates, [0, 0]
    is the top-left corner, as the policies use; absent: the image centre). A matrix,
    so it fuses into the sample's one warp."""

    op: Literal["shear"] = "shear"
    x: Pair = Field(default=(0.0, 0.0), description="Degrees: s for [-s, s], or [min, max].")
    y: Pair = Field(default=(0.0, 0.0), description="Degrees: s for [-s, s], or [min, max].")
    center: tuple[float, float] | None = Field(
        default=None, description="[cx, cy] in pixels from the top-left corner; null: centre."
    )

    @field_validator("x", "y", mode="before", json_schema_input_type=NumberOrPair)
    @classmethod
    def _range(cls, v: Any) -> Pair:
        return _angle(v)

    @field_validator("center", mode="before")
    @classmethod
    def _center(cls, v: Any) -> tuple[float, float] | None:
        v = _pair(v) if v is not None else None
        if v is not None and not isinstance(v, tuple):
            raise ValueError("center must be [cx, cy] or null")
        return None if v is None else (number(v[0]), number(v[1]))

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slots 1-2: x and y in degrees."""
        on = self.applied(draws)
        return {
            "applied": on,
            "x": gated(draws.uniform(1, *self.x), on, 0.0),
            "y": gated(draws.uniform(2, *self.y), on, 0.0),
        }

    def matrix(self, params: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
        h, w = canvas
        if self.center is None:
            cx, cy = (w - 1) / 2, (h - 1) / 2
        else:  # pixel edges to pixel centres
            cx, cy = np.full_like(w, self.center[0] - 0.5), np.full_like(h, self.center[1] - 0.5)
        m = geometry.shear(np.deg2rad(params["x"]), np.deg2rad(params["y"]), cx, cy)
        return m, canvas
