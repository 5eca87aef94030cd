"""random_erasing: torchvision's RandomErasing box, filled with a constant."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import field_validator

from augsvc.maths import kernels
from augsvc.maths.rng import Draws
from augsvc.ops._boxes import random_box
from augsvc.ops.base import Canvas, Occluder, OpKind, Params, PixelOp
from augsvc.ops.fields import AreaFraction, AspectRatio, PixelInput, Probability, pixel_values
from augsvc.ops.registry import register


@register
class RandomErasing(PixelOp, Occluder):
    """Erase a random rectangle (torchvision's RandomErasing): area fraction from
    ``scale``, aspect ratio from ``ratio``, filled with ``value`` (0-255 per channel)."""

    kind: ClassVar[OpKind] = "erase"
    op: Literal["random_erasing"] = "random_erasing"
    scale: AreaFraction = (0.02, 0.33)
    ratio: AspectRatio = (0.3, 3.3)
    value: tuple[int, ...] = (0,)
    p: Probability = 0.5

    @field_validator("value", mode="before", json_schema_input_type=PixelInput)
    @classmethod
    def _value(cls, v: Any) -> tuple[int, ...]:
        return pixel_values(v, "value")

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slots 1-22: the box search (see ``random_box``); slot 0: the coin."""
        h, w = canvas
        top, left, bh, bw, found = random_box(draws, h, w, self.scale, self.ratio, transpose=True)
        on = self.applied(draws) & found
        zero = np.zeros_like(h)
        return {
            "applied": on,
            "top": np.where(on, top, zero),
            "left": np.where(on, left, zero),
            "height": np.where(on, bh, zero),
            "width": np.where(on, bw, zero),
        }

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        boxes = np.stack([params[k] for k in ("top", "left", "height", "width")], 1)
        return kernels.erase(x, params["applied"], boxes, self.value)

    def occluded_rectangles(self, params: Params) -> list[np.ndarray]:
        """The one rectangle each applied sample was filled over (pixel rows
        [top, top + height) are continuous y in [top, top + height])."""
        x, y = params["left"], params["top"]
        boxes = np.stack([x, y, x + params["width"], y + params["height"]], 1)
        return [boxes[i : i + 1] if on else boxes[:0] for i, on in enumerate(params["applied"])]
