"""solarize_add: brighten the values below a threshold (timm's and TF's SolarizeAdd)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, field_validator

from augsvc.maths import tone
from augsvc.maths.rng import Draws
from augsvc.ops.base import Canvas, OpKind, Params, PixelOp, gated
from augsvc.ops.fields import NumberOrPair, Pair, value_range
from augsvc.ops.registry import register


@register
class SolarizeAdd(PixelOp):
    """Add ``add`` to every channel value below ``threshold`` (capped at 255), as the
    TensorFlow policies and timm's ``SolarizeAdd`` (PIL's lookup table): exact on uint8
    pixels. torchvision has no such op; timm's RandAugment uses it."""

    kind: ClassVar[OpKind] = "tone"
    op: Literal["solarize_add"] = "solarize_add"
    add: Pair = Field(description="0..255: a exactly, or [min, max] drawn per sample.")
    threshold: float = Field(default=128.0, ge=0.0, le=256.0)

    @field_validator("add", mode="before", json_schema_input_type=NumberOrPair)
    @classmethod
    def _add(cls, v: Any) -> Pair:
        return value_range(v, "add", 0.0, 255.0)

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slot 1: add (whole grey levels, as PIL's table)."""
        on = self.applied(draws)
        return {"applied": on, "add": gated(draws.uniform(1, *self.add), on, 0.0)}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return tone.solarize_add(x, params["applied"], params["add"], self.threshold)
