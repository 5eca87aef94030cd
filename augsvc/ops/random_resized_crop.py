"""random_resized_crop: torchvision's RandomResizedCrop, as one matrix."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from augsvc.maths import geometry
from augsvc.maths.rng import Draws
from augsvc.ops._boxes import random_box
from augsvc.ops.base import Canvas, GeometricOp, Params, Size
from augsvc.ops.fields import AreaFraction, AspectRatio, SizeInput, size_hw
from augsvc.ops.registry import register


@register
class RandomResizedCrop(GeometricOp):
    """Crop a random area and aspect ratio, then resize to ``size`` (torchvision semantics:
    ten tries at a box that fits, else a centre crop clamped to ``ratio``)."""

    changes_size = True
    op: Literal["random_resized_crop"] = "random_resized_crop"
    size: tuple[int, int] = Field(description="Output size: n or [height, width].")
    scale: AreaFraction = Field(default=(0.08, 1.0), description="Area fraction range, in (0, 1].")
    ratio: AspectRatio = Field(default=(3 / 4, 4 / 3), description="Aspect ratio (w/h) range, > 0.")

    _size = field_validator("size", mode="before", json_schema_input_type=SizeInput)(
        lambda cls, v: size_hw(v)
    )

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slots 1-22: the box search (see ``random_box``)."""
        h, w = canvas
        top, left, bh, bw, found = random_box(draws, h, w, self.scale, self.ratio, transpose=False)
        # Fallback as torchvision: the whole image, cropped centrally to the ratio bounds.
        in_ratio = w / h
        lo, hi = self.ratio
        fw = np.where(in_ratio < lo, w, np.where(in_ratio > hi, np.round(h * hi), w))
        fh = np.where(in_ratio < lo, np.round(w / lo), h)
        bh, bw = np.where(found, bh, fh), np.where(found, bw, fw)
        top = np.where(found, top, np.floor((h - fh) / 2))
        left = np.where(found, left, np.floor((w - fw) / 2))
        return {"top": top, "left": left, "height": bh, "width": bw}

    def matrix(self, params: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
        n = len(canvas[0])
        oh, ow = (np.full(n, float(s)) for s in self.size)
        p = params
        return geometry.crop_resize(p["top"], p["left"], p["height"], p["width"], oh, ow), (oh, ow)

    def fixed_size(self, size: Size | None) -> Size | None:
        return self.size
