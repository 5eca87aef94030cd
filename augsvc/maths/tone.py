"""Tone kernels: the non-linear colour ops of the augmentation policies.

Posterize, solarize, invert, autocontrast, equalize, sharpness and HSV hue, each
written as torchvision's uint8 kernel is: the samples' float pixels are first put on
the uint8 grid they would hold at that point (rounded and clamped, as the engine's
own output is), then the integer maths runs in float32 with torchvision's order of
operations and its truncation, so one op alone gives torchvision's bytes. Each kernel
runs batched on the samples that drew it and leaves the others' pixels untouched
(it writes the drawn samples' pixels in place); alpha passes through, as in the
colour map.
"""

from __future__ import annotations

import numpy as np
import torch


def _select(x: torch.Tensor, applied: np.ndarray) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The applied samples' colour channels on the uint8 grid (float), and their rows
    (None and ``x`` when no sample applies)."""
    picked = np.flatnonzero(applied)
    if len(picked) == 0:  # most stages of a policy, on most chunks
        return None, x
    rows = torch.as_tensor(picked, device=x.device)
    c = 3 if x.shape[1] == 4 else x.shape[1]
    return x[rows, :c].round().clamp_(0, 255), rows


def _put(x: torch.Tensor, rows: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Write the samples' new colour channels into ``x`` in place: a stage's float
    pixels belong to its chunk alone, and copying the whole chunk per op cost more
    than the ops."""
    x[rows, : y.shape[1]] = y
    return x


def _per_sample(values: np.ndarray, applied: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    v = np.asarray(values, dtype=np.float64)[np.flatnonzero(applied)]
    return torch.as_tensor(v, dtype=torch.float32, device=like.device).view(-1, 1, 1, 1)


def posterize(x: torch.Tensor, applied: np.ndarray, bits: np.ndarray) -> torch.Tensor:
    """Keep the top ``bits`` bits of every channel (``image & mask``)."""
    q, rows = _select(x, applied)
    if q is None:
        return x
    step = _per_sample(2.0 ** (8 - np.asarray(bits)), applied, q)
    return _put(x, rows, q - torch.remainder(q, step))


def solarize(x: torch.Tensor, applied: np.ndarray, threshold: np.ndarray) -> torch.Tensor:
    """Invert the values at or above ``threshold``."""
    q, rows = _select(x, applied)
    if q is None:
        return x
    t = _per_sample(threshold, applied, q)
    return _put(x, rows, torch.where(q >= t, 255 - q, q))


def solarize_add(
    x: torch.Tensor, applied: np.ndarray, add: np.ndarray, threshold: float
) -> torch.Tensor:
    """Add ``add`` (truncated to whole levels) to values below ``threshold``, capped at
    255: PIL's lookup table in timm's ``solarize_add``."""
    q, rows = _select(x, applied)
    if q is None:
        return x
    a = _per_sample(np.trunc(np.asarray(add, dtype=np.float64)), applied, q)
    return _put(x, rows, torch.where(q < threshold, (q + a).clamp_(max=255), q))


def invert(x: torch.Tensor, applied: np.ndarray) -> torch.Tensor:
    q, rows = _select(x, applied)
    return x if q is None else _put(x, rows, 255 - q)


def autocontrast(x: torch.Tensor, applied: np.ndarray) -> torch.Tensor:
    """Stretch each channel's [min, max] to [0, 255] (a flat channel is kept)."""
    q, rows = _select(x, applied)
    if q is None:
        return x
    lo = q.amin(dim=(-2, -1), keepdim=True)
    hi = q.amax(dim=(-2, -1), keepdim=True)
    flat = hi == lo
    inv_scale = hi.sub_(lo).mul_(1.0 / 255)
    lo[flat] = 0.0
    inv_scale[flat] = 1.0
    return _put(x, rows, q.sub(lo).div_(inv_scale).clamp_(0, 255).floor_())


def equalize(x: torch.Tensor, applied: np.ndarray) -> torch.Tensor:
    """Histogram equalisation per channel with PIL's lookup table (torchvision's)."""
    q, rows = _select(x, applied)
    if q is None:
        return x
    flat = q.to(torch.long).flatten(start_dim=-2)
    hist = torch.zeros((*flat.shape[:-1], 256), dtype=torch.int32, device=q.device)
    hist.scatter_add_(-1, flat, torch.ones_like(flat, dtype=torch.int32))
    cum = hist.cumsum(dim=-1, dtype=torch.int32)
    last = cum.argmax(dim=-1, keepdim=True)
    step = (flat.shape[-1] - hist.gather(-1, last)).div(255, rounding_mode="floor")
    valid = step.ne(0)
    lut = (cum[..., :-1] + step // 2).div(step.clamp(min=1), rounding_mode="floor").clamp_(0, 255)
    lut = torch.cat([torch.zeros_like(lut[..., :1]), lut], dim=-1)
    out = torch.where(valid, lut.gather(-1, flat), flat).view_as(q)
    return _put(x, rows, out.to(q.dtype))


def saturation(x: torch.Tensor, applied: np.ndarray, factor: np.ndarray) -> torch.Tensor:
    """Blend with the floored luma (torchvision's weights, 0.2989 for red) by ``factor``,
    truncating as torchvision does. Grey images are kept."""
    if x.shape[1] == 1:
        return x
    q, rows = _select(x, applied)
    if q is None:
        return x
    r, g, b = q.unbind(dim=1)
    grey = r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).floor_().unsqueeze_(1)
    s = _per_sample(factor, applied, q)
    rest = _per_sample(1.0 - np.asarray(factor, dtype=np.float64), applied, q)
    return _put(x, rows, q.mul(s).add_(grey.mul(rest)).clamp_(0, 255).floor_())


def sharpness(x: torch.Tensor, applied: np.ndarray, factor: np.ndarray) -> torch.Tensor:
    """Blend with PIL's smoothing filter (interior pixels; the one-pixel border kept):
    factor 0 smooths, 1 keeps, 2 sharpens. Images with a side of 2 or less are kept."""
    if x.shape[-1] <= 2 or x.shape[-2] <= 2:
        return x
    q, rows = _select(x, applied)
    if q is None:
        return x
    # PIL's smoothing kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 as an exact integer
    # sum (a 3x3 box sum plus four times the centre): the quotient by 13 is never a
    # half, so rounding it gives what rounding torchvision's float convolution gives,
    # for a fraction of a depthwise convolution's cost (and of avg_pool2d's).
    column = q[..., :-2, :] + q[..., 1:-1, :] + q[..., 2:, :]
    box = column[..., :-2] + column[..., 1:-1] + column[..., 2:]
    blurred = box.add_(q[..., 1:-1, 1:-1], alpha=4.0).div_(13.0).round_()
    out = q.clone()
    view = out[..., 1:-1, 1:-1]
    rest = _per_sample(1.0 - np.asarray(factor, dtype=np.float64), applied, q)
    view.add_(blurred.sub_(view).mul_(rest))
    return _put(x, rows, out.clamp_(0, 255).floor_())


def hue(x: torch.Tensor, applied: np.ndarray, shift: np.ndarray) -> torch.Tensor:
    """Rotate the HSV hue by ``shift`` turns (grey images have no hue to turn)."""
    if x.shape[1] == 1:
        return x
    q, rows = _select(x, applied)
    if q is None:
        return x
    hsv = _rgb_to_hsv(q.mul(1.0 / 255))
    h = (hsv[:, 0:1] + _per_sample(shift, applied, q)).remainder_(1.0)
    rgb = _hsv_to_rgb(torch.cat([h, hsv[:, 1:]], dim=1))
    return _put(x, rows, rgb.mul_(255.0 + 1.0 - 1e-3).floor_())


def _rgb_to_hsv(image: torch.Tensor) -> torch.Tensor:
    """torchvision's (Pillow's) RGB -> HSV on [0, 1] floats, operation for operation."""
    r, g, _ = image.unbind(dim=-3)
    minc, maxc = torch.aminmax(image, dim=-3)
    eqc = maxc == minc
    channels_range = maxc - minc
    ones = torch.ones_like(maxc)
    s = channels_range / torch.where(eqc, ones, maxc)
    divisor = torch.where(eqc, ones, channels_range).unsqueeze_(dim=-3)
    rc, gc, bc = ((maxc.unsqueeze(dim=-3) - image) / divisor).unbind(dim=-3)
    maxc_neq_r = maxc != r
    maxc_eq_g = maxc == g
    hg = rc.add(2.0).sub_(bc).mul_(maxc_eq_g & maxc_neq_r)
    hr = bc.sub_(gc).mul_(~maxc_neq_r)
    hb = gc.add_(4.0).sub_(rc).mul_(maxc_neq_r.logical_and_(maxc_eq_g.logical_not_()))
    h = hr.add_(hg).add_(hb).mul_(1.0 / 6.0).add_(1.0).fmod_(1.0)
    return torch.stack((h, s, maxc), dim=-3)


def _hsv_to_rgb(img: torch.Tensor) -> torch.Tensor:
    """torchvision's HSV -> RGB, operation for operation."""
    h, s, v = img.unbind(dim=-3)
    h6 = h.mul(6)
    i = torch.floor(h6)
    f = h6.sub_(i)
    i = i.to(dtype=torch.int32)
    sxf = s * f
    one_minus_s = 1.0 - s
    q = (1.0 - sxf).mul_(v).clamp_(0.0, 1.0)
    t = sxf.add_(one_minus_s).mul_(v).clamp_(0.0, 1.0)
    p = one_minus_s.mul_(v).clamp_(0.0, 1.0)
    i.remainder_(6)
    vpqt = torch.stack((v, p, q, t), dim=-3)
    select = torch.tensor([[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]])
    select = select.to(device=img.device)[:, i].moveaxis(0, -3)
    return vpqt.gather(-3, select)
