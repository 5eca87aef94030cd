"""trivial_augment_wide: torchvision's TrivialAugmentWide, drawn per sample from the key."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from augsvc.maths.rng import Draws
from augsvc.ops._policy import Entry, Policy, derived, space
from augsvc.ops.base import OpKind
from augsvc.ops.registry import register


@register
class TrivialAugmentWide(Policy):
    """torchvision's TrivialAugmentWide: one of its 14 ops (RandAugment's, with the
    wide magnitudes: shear 0.99, translate 32 pixels, rotate 135 degrees, factors
    0.99, posterize down to 2 bits) chosen uniformly, at a magnitude bin drawn
    uniformly from ``num_magnitude_bins``, signed ops negated half the time.
    ``table`` is torchvision's op table (filled in; the digest pins it)."""

    kind: ClassVar[OpKind] = "policy"
    op: Literal["trivial_augment_wide"] = "trivial_augment_wide"
    num_magnitude_bins: int = Field(default=31, ge=2, le=256)
    table: tuple[Entry, ...] | None = Field(default=None, validate_default=True)

    @field_validator("table", mode="before")
    @classmethod
    def _table(cls, v: Any, info: ValidationInfo) -> tuple[Entry, ...]:
        bins = info.data.get("num_magnitude_bins", 31)
        return derived(v, space("trivial_augment_wide", bins), info)

    def table_entries(self) -> tuple[Entry, ...]:
        assert self.table is not None
        return self.table

    @property
    def positions(self) -> int:
        return 1

    def bins(self, draws: Draws, position: int) -> np.ndarray:
        u = draws.uniform(2 + 3 * position)
        n = self.num_magnitude_bins
        return np.minimum((u * n).astype(np.int64), n - 1)
