"""Real photo tensors for engine tests (the bundled sample photo, decoded with Pillow)."""

from __future__ import annotations

import io
from functools import cache
from importlib.resources import files

import numpy as np
import torch
from PIL import Image


@cache
def _photo() -> np.ndarray:
    data = files("augsvc").joinpath("data/sample.jpg").read_bytes()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def photo(height: int = 375, width: int = 500) -> torch.Tensor:
    """The sample photo as uint8 (3,H,W), resized when asked."""
    arr = _photo()
    if arr.shape[:2] != (height, width):
        arr = np.asarray(Image.fromarray(arr).resize((width, height), Image.Resampling.BILINEAR))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def photo_batch(n: int, height: int = 120, width: int = 160) -> torch.Tensor:
    """n different crops of the photo, uint8 (n,3,H,W)."""
    big = photo(375, 500)
    out = []
    for i in range(n):
        top, left = (i * 37) % (375 - height), (i * 53) % (500 - width)
        out.append(big[:, top : top + height, left : left + width])
    return torch.stack(out).contiguous()
