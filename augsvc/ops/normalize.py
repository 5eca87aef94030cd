"""normalize: (x/255 - mean) / std; ends the recipe, output becomes float32."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import field_validator, model_validator

from augsvc.maths import kernels
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, OpKind, Params, PixelOp
from augsvc.ops.fields import MIN_POSITIVE, Number
from augsvc.ops.registry import register


@register
class Normalize(PixelOp):
    """(x/255 - mean) / std per channel; must be the last op; output becomes float32."""

    kind: ClassVar[OpKind] = "normalize"
    terminal: ClassVar[bool] = True
    op: Literal["normalize"] = "normalize"
    mean: tuple[Number, ...] = (0.485, 0.456, 0.406)
    std: tuple[Number, ...] = (0.229, 0.224, 0.225)

    @model_validator(mode="after")
    def _check(self) -> Normalize:
        if self.p != 1.0:
            raise ValueError("normalize cannot be random: p must be 1")
        if len(self.mean) != len(self.std) or len(self.mean) not in (1, 3, 4):
            raise ValueError("mean and std must have the same length (1, 3 or 4)")
        return self

    @field_validator("std")
    @classmethod
    def _std(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(s <= 0 for s in v):
            raise ValueError("std values must be > 0")
        if any(s < MIN_POSITIVE for s in v):  # 1/std must stay finite in float32
            raise ValueError(f"std values must be >= {MIN_POSITIVE:g}")
        return v

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        return {}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return kernels.normalize(x, self.mean, self.std)
