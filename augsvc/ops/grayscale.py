"""grayscale: colour replaced by luma, channel count kept."""

from __future__ import annotations

from typing import Literal

from augsvc.maths import colour
from augsvc.maths.colour import ColourMap
from augsvc.ops.base import ColourOp, Params
from augsvc.ops.fields import Probability
from augsvc.ops.registry import register


@register
class Grayscale(ColourOp):
    """Replace colour by luma (ITU-R 601), keeping the channel count."""

    op: Literal["grayscale"] = "grayscale"
    p: Probability = 0.1

    def colour(self, params: Params, cmap: ColourMap) -> None:
        cmap.linear(colour.grayscale(params["applied"]))
