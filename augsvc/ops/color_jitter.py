"""color_jitter: brightness, contrast, saturation and hue as one colour map."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from augsvc.maths import colour
from augsvc.maths.colour import ColourMap
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, ColourOp, Params, gated
from augsvc.ops.fields import NumberOrPair, Pair, factor_range, ordered, symmetric_range
from augsvc.ops.registry import register


@register
class ColorJitter(ColourOp):
    """Brightness, contrast, saturation and hue, applied in that order as one fused
    per-sample colour matrix (clamping once at the end, as DALI's color_twist).

    brightness/contrast/saturation: x means a factor in [max(0, 1-x), 1+x], or [min, max].
    hue: h in [0, 0.5] means a shift in [-h, h] turns of the colour wheel, or [min, max];
    it rotates chroma in YIQ space (as DALI's hue), a linear stand-in for HSV hue.
    """

    op: Literal["color_jitter"] = "color_jitter"
    brightness: Pair = (1.0, 1.0)
    contrast: Pair = (1.0, 1.0)
    saturation: Pair = (1.0, 1.0)
    hue: Pair = (0.0, 0.0)

    @field_validator(
        "brightness", "contrast", "saturation", mode="before", json_schema_input_type=NumberOrPair
    )
    @classmethod
    def _factor(cls, v: Any) -> Pair:
        v = ordered(factor_range(v))
        if v[0] < 0:
            raise ValueError("factors must be >= 0")
        return v

    @field_validator("hue", mode="before", json_schema_input_type=NumberOrPair)
    @classmethod
    def _hue(cls, v: Any) -> Pair:
        return ordered(symmetric_range(v, name="hue"), lo=-0.5, hi=0.5)

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slots 1-4: brightness, contrast, saturation, hue."""
        on = self.applied(draws)
        return {
            "applied": on,
            "brightness": gated(draws.uniform(1, *self.brightness), on, 1.0),
            "contrast": gated(draws.uniform(2, *self.contrast), on, 1.0),
            "saturation": gated(draws.uniform(3, *self.saturation), on, 1.0),
            "hue": gated(draws.uniform(4, *self.hue), on, 0.0),
        }

    def colour(self, params: Params, cmap: ColourMap) -> None:
        cmap.linear(colour.brightness(params["brightness"]))
        cmap.contrast(params["contrast"])
        cmap.linear(colour.saturation(params["saturation"]))
        cmap.linear(colour.hue(params["hue"]))
