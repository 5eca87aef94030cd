"""affine: torchvision's RandomAffine ranges, Kornia's affine matrix."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from augsvc.maths import geometry
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, GeometricOp, Params, gated
from augsvc.ops.fields import (
    Degrees,
    NumberOrPair,
    Pair,
    _pair,
    number,
    ordered,
    positive_range,
    symmetric_range,
)
from augsvc.ops.registry import register


@register
class Affine(GeometricOp):
    """Random affine as torchvision's RandomAffine: rotation, translation, scale, shear.

    The matrix is built with Kornia's ``get_affine_matrix2d`` convention (shear first,
    then rotation and scale about the centre, then translation).
    """

    op: Literal["affine"] = "affine"
    degrees: Degrees = Field(default=(0.0, 0.0), description="Rotation range in degrees.")
    translate: Pair = Field(
        default=(0.0, 0.0),
        description="Max |shift| as fractions of width and height: [tx, ty], each in [0, 1].",
    )
    scale: Pair = Field(default=(1.0, 1.0), description="Scale factor range [min, max] > 0.")
    shear: tuple[float, float, float, float] = Field(
        default=(0.0, 0.0, 0.0, 0.0),
        description="Shear in degrees: s for x in [-s, s]; [a, b] for x; [xa, xb, ya, yb].",
    )

    @field_validator("translate", mode="before")
    @classmethod
    def _translate(cls, v: Any) -> Pair:
        v = _pair(v)
        if not isinstance(v, tuple) or not all(0.0 <= t <= 1.0 for t in v):
            raise ValueError("translate must be [tx, ty] with each in [0, 1]")
        return v

    @field_validator("scale", mode="before")
    @classmethod
    def _scale(cls, v: Any) -> Pair:
        return positive_range(v, "scale")

    @field_validator(
        "shear",
        mode="before",
        json_schema_input_type=NumberOrPair | tuple[float, float, float, float],
    )
    @classmethod
    def _shear(cls, v: Any) -> tuple[float, float, float, float]:
        if isinstance(v, list | tuple) and len(v) == 4:
            xa, xb, ya, yb = (number(x) for x in v)
            ordered((xa, xb), lo=-89, hi=89)
            ordered((ya, yb), lo=-89, hi=89)
            return (xa, xb, ya, yb)
        xa, xb = ordered(symmetric_range(v, name="shear"), lo=-89, hi=89)
        return (xa, xb, 0.0, 0.0)

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slots 1-6: angle, tx, ty, scale, shear x, shear y."""
        h, w = canvas
        on = self.applied(draws)
        tx_max, ty_max = self.translate[0] * w, self.translate[1] * h
        xa, xb, ya, yb = self.shear
        return {
            "applied": on,
            "angle": gated(draws.uniform(1, *self.degrees), on, 0.0),
            "tx": gated(draws.uniform(2) * 2 * tx_max - tx_max, on, 0.0),
            "ty": gated(draws.uniform(3) * 2 * ty_max - ty_max, on, 0.0),
            "scale": gated(draws.uniform(4, *self.scale), on, 1.0),
            "shear_x": gated(draws.uniform(5, xa, xb), on, 0.0),
            "shear_y": gated(draws.uniform(6, ya, yb), on, 0.0),
        }

    def matrix(self, params: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
        h, w = canvas
        p = params
        m = geometry.affine(
            p["angle"], p["tx"], p["ty"], p["scale"], p["shear_x"], p["shear_y"],
            (w - 1) / 2, (h - 1) / 2,
        )  # fmt: skip
        return m, canvas
