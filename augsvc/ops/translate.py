"""translate: shift by x and y, in pixels or fractions of the image."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from augsvc.maths import geometry
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, GeometricOp, Params, gated
from augsvc.ops.fields import NumberOrPair, Pair, ordered, symmetric_range
from augsvc.ops.registry import register


@register
class Translate(GeometricOp):
    """Shift by ``x`` right and ``y`` down, as torchvision's
    ``F.affine(translate=[x, y])``. ``units``: pixels, or fraction (of the width for x,
    of the height for y, as RandomAffine's ``translate``). The parameters returned are
    always in pixels. A matrix, so it fuses into the sample's one warp."""

    op: Literal["translate"] = "translate"
    x: Pair = Field(default=(0.0, 0.0), description="t for [-t, t], or [min, max].")
    y: Pair = Field(default=(0.0, 0.0), description="t for [-t, t], or [min, max].")
    units: Literal["pixels", "fraction"] = "pixels"

    @field_validator("x", "y", mode="before", json_schema_input_type=NumberOrPair)
    @classmethod
    def _range(cls, v: Any) -> Pair:
        return ordered(symmetric_range(v, name="translate"), lo=-16384, hi=16384)

    @model_validator(mode="after")
    def _fractions_within_one(self) -> Translate:
        if self.units == "fraction" and max(map(abs, (*self.x, *self.y))) > 1:
            raise ValueError("fractions of the image must lie in [-1, 1]")
        return self

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slots 1-2: x and y (in ``units``; returned in pixels)."""
        h, w = canvas
        on = self.applied(draws)
        sx, sy = (w, h) if self.units == "fraction" else (1.0, 1.0)
        return {
            "applied": on,
            "x": gated(draws.uniform(1, *self.x) * sx, on, 0.0),
            "y": gated(draws.uniform(2, *self.y) * sy, on, 0.0),
        }

    def matrix(self, params: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
        return geometry.translation(params["x"], params["y"]), canvas
