"""A preview: n augmentations of one image (sample keys 0..n-1) tiled into one PNG."""

from __future__ import annotations

from functools import lru_cache

import torch

from augsvc.codec import decode_image, encode_png, probe_image, sample_photo_bytes
from augsvc.engine import Plan, augment
from augsvc.maths.transfer import to_host
from augsvc.pixel_budget import PixelBudget
from augsvc.service.grid import tile


@lru_cache(maxsize=1)
def sample_photo() -> torch.Tensor:
    """The bundled photo that ``GET .../preview`` shows."""
    return decode_image(sample_photo_bytes(), max_pixels=10**8, name="sample.jpg")


def render(plan: Plan, image: torch.Tensor, seed: int, n: int, device: torch.device,
           max_output_pixels: int) -> bytes:  # fmt: skip
    """n samples of one image (keys 0..n-1) as one PNG grid; runs on an engine thread
    while the caller holds its cost (:func:`preview_cost`) of the pixel budget."""
    batch = image.unsqueeze(0).expand(n, -1, -1, -1).contiguous()
    result = augment(plan, batch, seed=seed, device=device, max_output_pixels=max_output_pixels)
    return encode_png(tile(to_host(result.images)), compress_level=6)


def preview_cost(width: int, height: int, n: int, *, upload: bool) -> tuple[int, str]:
    """The decoded pixels a preview holds (n copies, plus the decoded upload) and how
    errors name it: a small image asked for many times costs as much as a big batch."""
    copies = n + 1 if upload else n
    return copies * width * height, f"the preview (n={n} of a {width}x{height} image)"


def preview_photo(plan: Plan, seed: int, n: int, *, device: torch.device, budget: PixelBudget,
                  max_output_pixels: int) -> bytes:  # fmt: skip
    """The grid of the bundled photo (``GET .../preview``)."""
    photo = sample_photo()
    with budget.hold(*preview_cost(photo.shape[2], photo.shape[1], n, upload=False)):
        return render(plan, photo, seed, n, device, max_output_pixels)


def preview_upload(plan: Plan, data: bytes, name: str, seed: int, n: int, *,
                   device: torch.device, budget: PixelBudget, max_pixels: int,
                   max_output_pixels: int) -> bytes:  # fmt: skip
    """The grid of an uploaded image: its cost is read from its header and held before
    a pixel is decoded."""
    header = probe_image(data, max_pixels=max_pixels, name=name)
    with budget.hold(*preview_cost(header.width, header.height, n, upload=True)):
        return render(plan, header.decode(), seed, n, device, max_output_pixels)
