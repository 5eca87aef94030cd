"""Replay a policy's per-sample draws with torchvision's functional ops, one op at a
time in the drawn order (uint8 between ops), to measure what fusing changes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms import InterpolationMode

from augsvc.engine import augment, compile_plan
from augsvc.recipes import parse_recipe

BILINEAR = InterpolationMode.BILINEAR
GEOMETRIC = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}


def _affine(img, **kw):
    base = {"angle": 0.0, "translate": [0, 0], "scale": 1.0, "shear": [0.0, 0.0]}
    return F.affine(img, **{**base, **kw}, interpolation=BILINEAR)


REPLAY = {
    "Identity": lambda x, v: x,
    "ShearX": lambda x, v: _affine(x, shear=[v, 0.0], center=[0, 0]),
    "ShearY": lambda x, v: _affine(x, shear=[0.0, v], center=[0, 0]),
    "TranslateX": lambda x, v: _affine(x, translate=[int(v), 0]),
    "TranslateY": lambda x, v: _affine(x, translate=[0, int(v)]),
    "Rotate": lambda x, v: F.rotate(x, v, interpolation=BILINEAR),
    "Brightness": F.adjust_brightness,
    "Color": F.adjust_saturation,
    "Contrast": F.adjust_contrast,
    "Sharpness": F.adjust_sharpness,
    "Posterize": lambda x, v: F.posterize(x, int(v)),
    "Solarize": F.solarize,
    "AutoContrast": lambda x, v: F.autocontrast(x),
    "Equalize": lambda x, v: F.equalize(x),
    "Invert": lambda x, v: F.invert(x),
}


@dataclass
class Replayed:
    """Per sample: the ops it drew, whether fusing moved a geometric op ahead of a
    non-geometric one drawn before it, and the mean absolute difference in grey
    levels between augsvc's fused output and the one-op-at-a-time replay."""

    names: list[list[str]]
    reordered: np.ndarray
    mean_abs: np.ndarray


def replay(policy: dict, images: torch.Tensor, seed: int = 0) -> Replayed:
    plan = compile_plan(parse_recipe({"ops": [policy]}))
    table = plan.ops[0].table
    result = augment(plan, images, seed=seed)
    choice, value = result.params["ops.0.choice"], result.params["ops.0.value"]
    names, reordered, diffs = [], [], []
    for i, x in enumerate(images):
        drawn = [table[c].name if c >= 0 else "Identity" for c in choice[i]]
        expected = x
        for k, name in enumerate(drawn):
            expected = REPLAY[name](expected, float(value[i, k]))
        geo = [name in GEOMETRIC for name in drawn if name != "Identity"]
        names.append(drawn)
        reordered.append(any(not a and b for j, a in enumerate(geo) for b in geo[j + 1 :]))
        diffs.append((result.images[i].double() - expected.double()).abs().mean().item())
    return Replayed(names, np.array(reordered), np.array(diffs))
