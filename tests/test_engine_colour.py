"""The fused colour map reproduces torchvision's colour semantics."""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from augsvc.maths import colour
from augsvc.maths.colour import ColourMap, apply_colour
from tests.photos import photo_batch


def fused(x, brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0, gray=False):
    n = x.shape[0]
    cmap = ColourMap(n)
    cmap.linear(colour.brightness(np.full(n, brightness)))
    cmap.contrast(np.full(n, contrast))
    cmap.linear(colour.saturation(np.full(n, saturation)))
    cmap.linear(colour.hue(np.full(n, hue)))
    if gray:
        cmap.linear(colour.grayscale(np.ones(n, dtype=bool)))
    a = torch.as_tensor(cmap.a, dtype=torch.float32)
    b = torch.as_tensor(cmap.b, dtype=torch.float32) if cmap.uses_mean else None
    return apply_colour(x.clone(), a, b, 255.0)


def soft_photos():
    """Photos squeezed into 64..192 so moderate factors never clip (no clamp differences)."""
    return photo_batch(4).float() * 0.5 + 64


def test_brightness_contrast_saturation_match_torchvision():
    x = soft_photos()
    ours = fused(x, brightness=1.2, contrast=0.8, saturation=1.3)
    ref = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x / 255, 1.2), 0.8), 1.3)
    assert (ours - ref * 255).abs().max() < 0.05


def test_grayscale_matches_torchvision():
    x = photo_batch(3).float()
    ref = TF.rgb_to_grayscale(x / 255, num_output_channels=3) * 255
    assert (fused(x, gray=True) - ref).abs().max() < 0.05


def test_hue_keeps_luma_and_turns_red_towards_green():
    x = soft_photos()
    turned = fused(x, hue=0.2)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert ((turned * luma).sum(1) - (x * luma).sum(1)).abs().max() < 0.05
    assert torch.allclose(fused(x, hue=0.0), x, atol=1e-3)
    red = torch.tensor([200.0, 60.0, 60.0]).view(1, 3, 1, 1)
    _, g, b = fused(red, hue=0.15).flatten().tolist()
    assert g > 60 and g > b  # rotated from red towards yellow/green, as HSV hue +


def test_identity_factors_are_identity():
    x = photo_batch(2).float()
    assert torch.allclose(fused(x), x, atol=1e-3)
