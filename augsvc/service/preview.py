"""A preview: n augmentations of one image (sample keys 0..n-1) tiled into one PNG."""

from __future__ import annotations

from functools import lru_cache

import torch

from augsvc.codec import decode_image, encode_png, sample_photo_bytes
from augsvc.engine import Plan, augment
from augsvc.service.grid import tile


@lru_cache(maxsize=1)
def sample_photo() -> torch.Tensor:
    """The bundled photo that ``GET .../preview`` shows."""
    return decode_image(sample_photo_bytes(), max_pixels=10**8, name="sample.jpg")


def render(plan: Plan, image: torch.Tensor, seed: int, n: int, device: torch.device,
           max_output_pixels: int) -> bytes:  # fmt: skip
    """n samples of one image as one PNG grid; runs on an engine thread."""
    batch = image.unsqueeze(0).expand(n, -1, -1, -1).contiguous()
    result = augment(plan, batch, seed=seed, device=device, max_output_pixels=max_output_pixels)
    images = (
        list(result.images) if isinstance(result.images, list) else list(result.images.unbind(0))
    )
    return encode_png(tile(images), compress_level=6)
