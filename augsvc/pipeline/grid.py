"""A contact sheet: n augmented images tiled into one PNG, for eyeballing a recipe."""

from __future__ import annotations

import math

import torch

GAP = 4
BACKGROUND = 255


def to_displayable(img: torch.Tensor) -> torch.Tensor:
    """uint8 (3, H, W) for any engine output: float outputs (normalised or 0-1) are
    stretched min..max per image, because their scale is the recipe's business."""
    img = img.detach().cpu()
    if img.dtype != torch.uint8:
        x = img.float()
        low, high = x.amin(), x.amax()
        x = (x - low) / (high - low) if high > low else torch.zeros_like(x)
        img = (x * 255).round().clamp(0, 255).to(torch.uint8)
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    elif img.shape[0] == 4:  # composite on white so transparency is visible
        alpha = img[3:].float() / 255
        img = (img[:3].float() * alpha + BACKGROUND * (1 - alpha)).round().to(torch.uint8)
    return img


def columns(n: int) -> int:
    """The grid's column count for n images; a client maps a click to a sample key with it."""
    return math.ceil(math.sqrt(n))


def tile(images: list[torch.Tensor]) -> torch.Tensor:
    """uint8 (3, H, W) grid, :func:`columns` columns, cells as large as the largest image,
    ``GAP`` pixels between and around them."""
    shown = [to_displayable(img) for img in images]
    cols = columns(len(shown))
    rows = math.ceil(len(shown) / cols)
    cell_h = max(img.shape[1] for img in shown)
    cell_w = max(img.shape[2] for img in shown)
    height = rows * cell_h + (rows + 1) * GAP
    width = cols * cell_w + (cols + 1) * GAP
    canvas = torch.full((3, height, width), BACKGROUND, dtype=torch.uint8)
    for i, img in enumerate(shown):
        r, c = divmod(i, cols)
        top = GAP + r * (cell_h + GAP) + (cell_h - img.shape[1]) // 2
        left = GAP + c * (cell_w + GAP) + (cell_w - img.shape[2]) // 2
        canvas[:, top : top + img.shape[1], left : left + img.shape[2]] = img
    return canvas
