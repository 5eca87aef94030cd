"""MixUp and CutMix on a batch, with draws that are a function of (seed, sample keys)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from .mix_draws import MixSettings, combined_state, draw_mix, key_states
from .soft_targets import smooth_one_hot

Mode = Literal["batch", "pair", "elem"]


@dataclass(frozen=True)
class MixParams:
    """How each sample of a batch was mixed (numpy arrays, one row per sample).

    ``partner[i]`` is the batch row mixed into row ``i``; ``lam[i]`` the weight of row
    ``i`` itself (after CutMix's area correction; 1.0 where nothing was mixed);
    ``applied[i]`` says whether the ``prob`` coin chose to mix the row at all;
    ``cutmix[i]`` says whether a box was pasted instead of blending; ``box[i]`` is that
    box, ``(y0, y1, x0, x1)`` half-open in pixels, copied from the partner. The soft
    target of row ``i`` is ``lam * y_i + (1 - lam) * y_partner`` (label-smoothed).
    """

    partner: np.ndarray
    lam: np.ndarray
    applied: np.ndarray
    cutmix: np.ndarray
    box: np.ndarray

    def __len__(self) -> int:
        return len(self.lam)


class Mixup:
    """MixUp / CutMix with label smoothing: timm's ``Mixup``, reproducible from keys.

    Use it for image classification when a model overfits or is over-confident: MixUp
    (a convex blend of two images and of their labels) and CutMix (a box of one image
    pasted into another, labels weighted by area) regularize by training on samples
    between the classes, which smooths decision boundaries and calibrates confidence;
    CutMix also keeps local features intact, so it helps localization. They are in every
    modern recipe (DeiT/timm: ``mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5,
    label_smoothing=0.1``; ResNet strikes back: ``0.1``/``1.0``); smaller alphas (0.1-0.4)
    mix less and suit small models and short schedules, where strong mixing underfits.
    They pay off over long schedules and slow the fit of the training set; pair them
    with :class:`SoftTargetCrossEntropy`, and keep evaluation un-mixed.

    The parameters and their meaning are timm's: ``mixup_alpha`` / ``cutmix_alpha`` are
    the Beta(alpha, alpha) concentrations (0 switches a method off), ``cutmix_minmax``
    draws the box side ratios uniformly in [min, max) instead (and forces
    ``cutmix_alpha=1``), ``prob`` is the chance to mix at all, ``switch_prob`` the chance
    of CutMix when both are on, ``correct_lam`` sets ``lam = 1 - box area / image area``
    when the box was clipped by the border, ``label_smoothing`` moves that mass evenly
    over ``num_classes`` classes. ``mode`` says what shares one draw: the whole
    ``"batch"``, each ``"pair"`` (rows ``i`` and ``N-1-i``, mixed with each other) or each
    ``"elem"``. Row ``i`` is mixed with row ``N-1-i`` (the flipped batch), as in timm.

    What differs: the draws come from ``seed`` and the batch's sample ``keys`` (e.g. the
    keys or dataset indices a stream sent, combined with the epoch), never from a global
    RNG, so the same (seed, keys) mix the same way on every run, machine and device -
    and in ``"elem"`` mode, sample by sample as the server mixes a stream. Works on CPU
    and CUDA tensors. Float input is blended in its own dtype; uint8 input (what the
    service answers by default) is first scaled to float32 in [0, 1] (``x / 255``, as
    torchvision's ``ToTensor`` does) and the mixed batch is float32 in [0, 1]: the batch
    a model takes, and a blend kept at full precision instead of rounded back to 256
    levels. Odd batches are allowed except in ``"pair"`` mode (the middle row
    of a flipped odd batch is its own partner). ``mixup_enabled = False`` turns it off.
    """

    def __init__(
        self,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 0.0,
        cutmix_minmax: Sequence[float] | None = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: Mode = "batch",
        correct_lam: bool = True,
        label_smoothing: float = 0.1,
        num_classes: int = 1000,
        *,
        seed: int = 0,
    ) -> None:
        minmax = None if cutmix_minmax is None else tuple(cutmix_minmax)
        if minmax is not None and len(minmax) != 2:
            raise ValueError(f"cutmix_minmax must be (min, max), got {cutmix_minmax}")
        self.settings = MixSettings(
            float(mixup_alpha), float(cutmix_alpha), minmax, float(prob), float(switch_prob),
            bool(correct_lam),
        )  # fmt: skip
        if mode not in ("batch", "pair", "elem"):
            raise ValueError(f"mode must be 'batch', 'pair' or 'elem', got {mode!r}")
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        key_states(seed, np.zeros(1, dtype=np.int64))  # checks the seed's range
        self.mode: Mode = mode
        self.label_smoothing = float(label_smoothing)
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.mixup_enabled = True

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"Mixup(mixup_alpha={s.mixup_alpha}, cutmix_alpha={s.cutmix_alpha}, "
            f"cutmix_minmax={s.cutmix_minmax}, prob={s.prob}, switch_prob={s.switch_prob}, "
            f"mode={self.mode!r}, correct_lam={s.correct_lam}, "
            f"label_smoothing={self.label_smoothing}, num_classes={self.num_classes}, "
            f"seed={self.seed})"
        )

    def params(self, keys: Any, size: tuple[int, int]) -> MixParams:
        """The mixing of a batch whose rows have sample ``keys``, images ``size=(H, W)``."""
        keys = _keys_array(keys)
        n = len(keys)
        partner = np.arange(n - 1, -1, -1, dtype=np.int64)
        if self.mode == "pair" and n % 2:
            raise ValueError(f"mode 'pair' needs an even batch, got {n} rows")
        states = key_states(self.seed, keys)
        if self.mode == "elem":
            source = np.arange(n)
        elif self.mode == "pair":
            source = np.minimum(np.arange(n), partner)
        else:
            states, source = combined_state(states), np.zeros(n, dtype=np.int64)
        if not self.mixup_enabled or n == 0:
            draws_lam = np.ones(len(states))
            draws_cut = draws_applied = np.zeros(len(states), dtype=bool)
            draws_box = np.zeros((len(states), 4), dtype=np.int64)
        else:
            d = draw_mix(states, self.settings, int(size[0]), int(size[1]))
            draws_lam, draws_applied, draws_cut, draws_box = d.lam, d.applied, d.cutmix, d.box
        return MixParams(
            partner=partner,
            lam=draws_lam[source],
            applied=draws_applied[source],
            cutmix=draws_cut[source],
            box=draws_box[source],
        )

    def __call__(
        self, x: torch.Tensor, target: torch.Tensor, keys: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix ``x`` (N, C, H, W) and integer ``target`` (N,): (mixed batch, soft targets
        (N, num_classes) float32). ``x`` is not modified; a new tensor is returned, in
        ``x``'s dtype when it is floating point, float32 in [0, 1] when it is uint8, so
        ``model(mixed)`` works on the service's uint8 batches as they come."""
        if x.ndim != 4:
            raise ValueError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
        x = unit_float(x)
        if target.shape != (len(x),):
            raise ValueError(f"target must be (N,) integer labels, got {tuple(target.shape)}")
        params = self.params(keys, (x.shape[-2], x.shape[-1]))
        if len(params) != len(x):
            raise ValueError(f"{len(params)} keys for a batch of {len(x)}")
        index = torch.as_tensor(params.partner, device=x.device)
        mixed = mix_images(x, x.index_select(0, index), params)
        soft = mix_targets(target, target.index_select(0, index), params, self.num_classes,
                           self.label_smoothing)  # fmt: skip
        return mixed, soft


def unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images as float32 in [0, 1] (``x / 255``); any other tensor as it is.

    A model's weights are floating point, so a mixed uint8 batch could not be fed to it;
    scaling first also keeps the blend exact instead of rounded to a grey level."""
    if x.dtype != torch.uint8:
        return x
    return x.to(torch.float32).div_(255.0)


def _keys_array(keys: Any) -> np.ndarray:
    if isinstance(keys, torch.Tensor):
        keys = keys.detach().cpu().numpy()
    arr = np.asarray(keys)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError("keys must be a 1-d sequence of non-negative integers, one per row")
    return arr.astype(np.int64)


def _weights(lam: np.ndarray, dtype: torch.dtype, device: torch.device):
    """(lam, 1 - lam) as (N, 1, 1, 1) tensors, each rounded once from float64."""
    shape = (len(lam), 1, 1, 1)
    w_self = torch.as_tensor(lam, dtype=torch.float64).to(dtype).view(shape).to(device)
    w_other = torch.as_tensor(1.0 - lam, dtype=torch.float64).to(dtype).view(shape).to(device)
    return w_self, w_other


def mix_images(a: torch.Tensor, b: torch.Tensor, params: MixParams) -> torch.Tensor:
    """Row ``i`` of ``a`` mixed with row ``i`` of ``b`` (its partner) as ``params`` say.

    MixUp rows are ``a * lam + b * (1 - lam)``, both weights rounded once from float64
    to ``a``'s dtype (float32 for uint8 input, then rounded half to even and clamped);
    CutMix rows are ``a`` with ``b``'s pixels inside the box. Separate multiply and add
    kernels, so CPU and CUDA give the same bits."""
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ValueError(f"images and partners differ: {a.shape} {a.dtype}, {b.shape} {b.dtype}")
    out = a.clone()
    blend = torch.as_tensor(~params.cutmix & (params.lam != 1.0))
    rows = torch.nonzero(blend).flatten()
    if len(rows):
        compute = a.dtype if a.dtype.is_floating_point else torch.float32
        w_self, w_other = _weights(params.lam[rows.numpy()], compute, a.device)
        lo = hi = None
        if not a.dtype.is_floating_point:
            lo, hi = torch.iinfo(a.dtype).min, torch.iinfo(a.dtype).max
        if a.device.type == "cpu":  # a row at a time in two reused buffers: cache-sized passes
            buf = torch.empty(a.shape[1:], dtype=compute)
            tmp = torch.empty_like(buf)
            for j, i in enumerate(rows.tolist()):
                buf.copy_(a[i]).mul_(w_self[j])
                buf.add_(tmp.copy_(b[i]).mul_(w_other[j]))
                out[i].copy_(buf if lo is None else buf.round_().clamp_(lo, hi))
        else:
            rows_dev = rows.to(a.device)
            blended = a.index_select(0, rows_dev).to(compute).mul_(w_self)
            blended.add_(b.index_select(0, rows_dev).to(compute).mul_(w_other))
            if lo is not None:
                blended = blended.round_().clamp_(lo, hi).to(a.dtype)
            out.index_copy_(0, rows_dev, blended)
    for i in np.flatnonzero(params.cutmix).tolist():  # a slice copy per box: cost ~ box area
        y0, y1, x0, x1 = params.box[i].tolist()
        out[i, :, y0:y1, x0:x1] = b[i, :, y0:y1, x0:x1]
    return out


def mix_targets(
    target: torch.Tensor,
    partner_target: torch.Tensor,
    params: MixParams,
    num_classes: int,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Soft targets ``lam * y + (1 - lam) * y_partner`` (float32, smoothed one-hots)."""
    y1 = smooth_one_hot(target, num_classes, label_smoothing)
    y2 = smooth_one_hot(partner_target, num_classes, label_smoothing)
    w_self, w_other = _weights(params.lam, torch.float32, y1.device)
    return y1 * w_self.view(-1, 1) + y2 * w_other.view(-1, 1)
