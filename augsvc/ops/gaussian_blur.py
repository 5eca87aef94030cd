"""gaussian_blur: a per-sample sigma, Kornia's separable blur."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator

from augsvc.maths import kernels
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, OpKind, Params, PixelOp, gated
from augsvc.ops.fields import (
    NumberOrPair,
    Pair,
    Probability,
    SizeInput,
    number,
    positive_range,
    size_hw,
)
from augsvc.ops.registry import register


@register
class GaussianBlur(PixelOp):
    """Gaussian blur with a per-sample sigma drawn uniformly from ``sigma``."""

    kind: ClassVar[OpKind] = "filter"
    op: Literal["gaussian_blur"] = "gaussian_blur"
    kernel_size: tuple[int, int] = Field(description="Odd size: n or [height, width].")
    sigma: Pair = (0.1, 2.0)
    p: Probability = 0.5

    @field_validator("kernel_size", mode="before", json_schema_input_type=SizeInput)
    @classmethod
    def _kernel(cls, v: Any) -> tuple[int, int]:
        h, w = size_hw(v)
        if h % 2 == 0 or w % 2 == 0 or h > 101 or w > 101:
            raise ValueError("kernel_size must be odd and at most 101")
        return (h, w)

    @field_validator("sigma", mode="before", json_schema_input_type=NumberOrPair)
    @classmethod
    def _sigma(cls, v: Any) -> Pair:
        if isinstance(v, int | float) and not isinstance(v, bool):
            v = (number(v), number(v))
        return positive_range(v, "sigma")

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slot 1: sigma (one value for both axes, as torchvision)."""
        on = self.applied(draws)
        return {"applied": on, "sigma": gated(draws.uniform(1, *self.sigma), on, 0.0)}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return kernels.blur(x, params["applied"], params["sigma"], self.kernel_size)
