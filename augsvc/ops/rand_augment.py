"""rand_augment: torchvision's RandAugment, drawn per sample from the key."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from augsvc.maths.rng import Draws
from augsvc.ops._policy import Entry, Policy, derived, space
from augsvc.ops.base import OpKind
from augsvc.ops.registry import register


@register
class RandAugment(Policy):
    """torchvision's RandAugment: ``num_ops`` times, one of its 14 ops (Identity,
    ShearX/Y, TranslateX/Y, Rotate, Brightness, Color, Contrast, Sharpness, Posterize,
    Solarize, AutoContrast, Equalize) chosen uniformly, at bin ``magnitude`` of
    ``num_magnitude_bins``, signed ops negated half the time. ``table`` is torchvision's
    op table for these parameters (filled in; it is what the digest pins). Shears and
    translations join the sample's one warp; set ``output.interpolation`` to nearest
    for torchvision's default sampling."""

    kind: ClassVar[OpKind] = "policy"
    op: Literal["rand_augment"] = "rand_augment"
    num_ops: int = Field(default=2, ge=0, le=16)
    num_magnitude_bins: int = Field(default=31, ge=2, le=256)  # before magnitude: it bounds it
    magnitude: int = Field(default=9, ge=0)
    table: tuple[Entry, ...] | None = Field(default=None, validate_default=True)

    @field_validator("magnitude")
    @classmethod
    def _magnitude(cls, v: int, info: ValidationInfo) -> int:
        bins = info.data.get("num_magnitude_bins", 31)
        if v >= bins:
            raise ValueError(f"magnitude must be below num_magnitude_bins ({bins})")
        return v

    @field_validator("table", mode="before")
    @classmethod
    def _table(cls, v: Any, info: ValidationInfo) -> tuple[Entry, ...]:
        return derived(v, space("rand_augment", info.data.get("num_magnitude_bins", 31)), info)

    def table_entries(self) -> tuple[Entry, ...]:
        assert self.table is not None
        return self.table

    @property
    def positions(self) -> int:
        return self.num_ops

    def bins(self, draws: Draws, position: int) -> np.ndarray:
        return np.full(draws.n, self.magnitude, dtype=np.int64)
