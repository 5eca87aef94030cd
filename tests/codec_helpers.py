"""Helpers of the codec tests: decode with the limits the tests use, compare images."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from augsvc import codec
from augsvc.codec import decode as decoding

MAX_PIXELS = 40_000_000


def decode(data: bytes, name: str = "test.img", **kw: int) -> torch.Tensor:
    return codec.decode_image(data, max_pixels=kw.get("max_pixels", MAX_PIXELS), name=name)


def decode_with_pillow_only(data: bytes) -> torch.Tensor:
    return decoding._decode(data, max_pixels=MAX_PIXELS, name="x", fast=False)


def to_chw(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image)
    array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    return torch.from_numpy(array.copy())


def mean_abs_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().mean().item()
