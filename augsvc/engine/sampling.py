"""Per-op parameter generators: (op, draws, canvas) -> named float64 arrays.

These decide *what* happens to each sample; they never touch pixels. Slot 0 of
every op is its apply-or-skip coin; the other slots are documented per function
and are part of the reproducibility contract (renumbering them changes samples).
The canvas is the per-sample (height, width) the op sees, since earlier crops and
resizes change it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from augsvc.engine.rng import Draws
from augsvc.recipes import ops as o

Params = dict[str, np.ndarray]
Canvas = tuple[np.ndarray, np.ndarray]  # (heights, widths), float64

ATTEMPTS = 10  # torchvision's tries at a random box before falling back


def _applied(op: o.Op, d: Draws) -> np.ndarray:
    return d.bernoulli(0, op.p)


def _gated(values: np.ndarray, applied: np.ndarray, identity: float) -> np.ndarray:
    return np.where(applied, values, identity)


def sample_rotate(op: o.Rotate, d: Draws, canvas: Canvas) -> Params:
    """slot 1: angle."""
    on = _applied(op, d)
    return {"applied": on, "angle": _gated(d.uniform(1, *op.degrees), on, 0.0)}


def sample_affine(op: o.Affine, d: Draws, canvas: Canvas) -> Params:
    """slots 1-6: angle, tx, ty, scale, shear x, shear y."""
    h, w = canvas
    on = _applied(op, d)
    tx_max, ty_max = op.translate[0] * w, op.translate[1] * h
    xa, xb, ya, yb = op.shear
    return {
        "applied": on,
        "angle": _gated(d.uniform(1, *op.degrees), on, 0.0),
        "tx": _gated(d.uniform(2) * 2 * tx_max - tx_max, on, 0.0),
        "ty": _gated(d.uniform(3) * 2 * ty_max - ty_max, on, 0.0),
        "scale": _gated(d.uniform(4, *op.scale), on, 1.0),
        "shear_x": _gated(d.uniform(5, xa, xb), on, 0.0),
        "shear_y": _gated(d.uniform(6, ya, yb), on, 0.0),
    }


def random_box(
    d: Draws,
    height: np.ndarray,
    width: np.ndarray,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    *,
    transpose: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """torchvision's box search, all ten attempts at once: area fraction from ``scale``
    (slots 1-10), log-uniform aspect ratio from ``ratio`` (slots 11-20), position
    (slots 21-22). Returns (top, left, h, w, found). ``transpose`` swaps which side
    the ratio widens: RandomResizedCrop reads it as w/h, RandomErasing as h/w."""
    area = (height * width)[:, None]
    fr = np.stack([d.uniform(1 + a, *scale) for a in range(ATTEMPTS)], 1)
    ar = np.stack([d.log_uniform(11 + a, *ratio) for a in range(ATTEMPTS)], 1)
    long_side = np.round(np.sqrt(area * fr * ar))
    short_side = np.round(np.sqrt(area * fr / ar))
    bh, bw = (long_side, short_side) if transpose else (short_side, long_side)
    if transpose:  # RandomErasing requires strictly smaller boxes
        ok = (bh < height[:, None]) & (bw < width[:, None]) & (bh > 0) & (bw > 0)
    else:
        ok = (bh <= height[:, None]) & (bw <= width[:, None]) & (bh > 0) & (bw > 0)
    found = ok.any(1)
    first = np.argmax(ok, 1)
    rows = np.arange(d.n)
    bh, bw = bh[rows, first], bw[rows, first]
    top = np.floor(d.uniform(21) * (height - bh + 1))
    left = np.floor(d.uniform(22) * (width - bw + 1))
    return top, left, bh, bw, found


def sample_random_resized_crop(op: o.RandomResizedCrop, d: Draws, canvas: Canvas) -> Params:
    h, w = canvas
    top, left, bh, bw, found = random_box(d, h, w, op.scale, op.ratio, transpose=False)
    # Fallback as torchvision: the whole image, cropped centrally to the ratio bounds.
    in_ratio = w / h
    lo, hi = op.ratio
    fw = np.where(in_ratio < lo, w, np.where(in_ratio > hi, np.round(h * hi), w))
    fh = np.where(in_ratio < lo, np.round(w / lo), h)
    bh, bw = np.where(found, bh, fh), np.where(found, bw, fw)
    top = np.where(found, top, np.floor((h - fh) / 2))
    left = np.where(found, left, np.floor((w - fw) / 2))
    return {"top": top, "left": left, "height": bh, "width": bw}


def sample_crop(op: o.Crop, d: Draws, canvas: Canvas) -> Params:
    """slots 1-2: vertical and horizontal position (random crops only)."""
    h, w = canvas
    ch, cw = op.size
    if op.position == "center":
        top, left = np.round((h - ch) / 2), np.round((w - cw) / 2)
    else:
        top = np.where(h >= ch, np.floor(d.uniform(1) * (h - ch + 1)), np.round((h - ch) / 2))
        left = np.where(w >= cw, np.floor(d.uniform(2) * (w - cw + 1)), np.round((w - cw) / 2))
    return {"top": top, "left": left}


def sample_flip(op: o.HFlip | o.VFlip, d: Draws, canvas: Canvas) -> Params:
    return {"applied": _applied(op, d)}


def sample_perspective(op: o.Perspective, d: Draws, canvas: Canvas) -> Params:
    """slots 1-8: inward shift of each corner (x, y) as a fraction of the bound."""
    h, w = canvas
    # a one-pixel line or a single pixel has no quadrilateral to distort: left alone
    on = _applied(op, d) & (h >= 2) & (w >= 2)
    bx, by = op.distortion_scale * (w // 2), op.distortion_scale * (h // 2)
    inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float64)
    shift = np.stack([d.uniform(1 + k) for k in range(8)], 1).reshape(-1, 4, 2)
    shift = shift * np.stack([bx, by], -1)[:, None, :] * inward
    return {"applied": on, "shift": np.where(on[:, None, None], shift, 0.0)}


def sample_color_jitter(op: o.ColorJitter, d: Draws, canvas: Canvas) -> Params:
    """slots 1-4: brightness, contrast, saturation, hue."""
    on = _applied(op, d)
    return {
        "applied": on,
        "brightness": _gated(d.uniform(1, *op.brightness), on, 1.0),
        "contrast": _gated(d.uniform(2, *op.contrast), on, 1.0),
        "saturation": _gated(d.uniform(3, *op.saturation), on, 1.0),
        "hue": _gated(d.uniform(4, *op.hue), on, 0.0),
    }


def sample_coin(op: o.Op, d: Draws, canvas: Canvas) -> Params:
    return {"applied": _applied(op, d)}


def sample_gaussian_blur(op: o.GaussianBlur, d: Draws, canvas: Canvas) -> Params:
    """slot 1: sigma (one value for both axes, as torchvision)."""
    on = _applied(op, d)
    return {"applied": on, "sigma": _gated(d.uniform(1, *op.sigma), on, 0.0)}


def sample_random_erasing(op: o.RandomErasing, d: Draws, canvas: Canvas) -> Params:
    h, w = canvas
    top, left, bh, bw, found = random_box(d, h, w, op.scale, op.ratio, transpose=True)
    on = _applied(op, d) & found
    zero = np.zeros_like(h)
    return {
        "applied": on,
        "top": np.where(on, top, zero),
        "left": np.where(on, left, zero),
        "height": np.where(on, bh, zero),
        "width": np.where(on, bw, zero),
    }


def sample_nothing(op: o.Op, d: Draws, canvas: Canvas) -> Params:
    return {}


SAMPLERS: dict[type[o.Op], Callable[[o.Op, Draws, Canvas], Params]] = {
    o.Rotate: sample_rotate,
    o.Affine: sample_affine,
    o.RandomResizedCrop: sample_random_resized_crop,
    o.Crop: sample_crop,
    o.Resize: sample_nothing,
    o.Pad: sample_nothing,
    o.HFlip: sample_flip,
    o.VFlip: sample_flip,
    o.Perspective: sample_perspective,
    o.ColorJitter: sample_color_jitter,
    o.Grayscale: sample_coin,
    o.GaussianBlur: sample_gaussian_blur,
    o.RandomErasing: sample_random_erasing,
    o.Normalize: sample_nothing,
}


def sample_op(op: o.Op, d: Draws, canvas: Canvas) -> Params:
    return SAMPLERS[type(op)](op, d, canvas)
