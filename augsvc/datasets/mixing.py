"""MixUp / CutMix inside a stream: partners, draws, pixels and soft targets.

A sample at global epoch position ``p`` is mixed with the sample at ``partner(p)``: the
next position on one random cycle through the epoch, fixed by (seed, epoch). A cycle
through every position is a derangement (no sample is its own partner, for two samples
or more) and is a function of (seed, epoch, p) alone, like the epoch's order. The partner
is rendered with its own sample key, exactly as it is rendered at its own position, and
lambda, the CutMix coin and box come from counter-based draws of ``p``'s key. So a mixed
sample never depends on its batch, rank, world size or resume point.

The draws are timm's per-element draws (``Mixup(mode="elem")``) from the SDK's
counter-based scheme: ``augsvc_client.regularization.Mixup(mode="elem", seed=seed)``
given the frame's sample keys reports the same lambdas and boxes (a parity test holds
the two copies together), so a trainer can check or redo any mixed sample.

Draw slots of a sample key under the ``"mix"`` root: 0 apply coin, 1 CutMix coin, 2-5 box
(centre, or with ``cutmix_minmax`` size then corner), 6-7 small-alpha boosts, 8 onwards
the gamma variates' rounds (three slots a round) of Beta(alpha, alpha).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from augsvc.errors import FieldError, ValidationFailed
from augsvc.maths.rng import mix64, sample_states, stream_base, uniform01

MIX_TAG = "mix"
#: Soft targets per frame are batch_size x num_classes float32: at most 64 MiB.
MAX_TARGET_ENTRIES = 16 * 1024 * 1024
_APPLY, _SWITCH, _BOX, _BOOST, _GAMMA = 0, 1, 2, 6, 8
_ROUNDS = 600


def _invalid(field: str, msg: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {msg}", errors=[FieldError(("query", field), msg)])


@dataclass(frozen=True)
class MixSpec:
    """A stream's mixing settings: timm's ``Mixup`` parameters in ``elem`` mode."""

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    cutmix_minmax: tuple[float, float] | None = None
    prob: float = 1.0
    switch_prob: float = 0.5
    correct_lam: bool = True
    label_smoothing: float = 0.0
    num_classes: int | None = None

    @property
    def enabled(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0 or self.cutmix_minmax is not None

    @property
    def cutmix_shape(self) -> float:
        return 1.0 if self.cutmix_minmax is not None else self.cutmix_alpha

    def check(self, classes: list[str] | None, labelled: bool, batch_size: int) -> MixSpec:
        """The settings with ``num_classes`` filled in, or a 422 naming the field at fault.

        Ranges the query declares (alphas >= 0, probabilities in [0, 1]) are checked by
        the route; what needs the dataset is checked here."""
        if self.cutmix_minmax is not None:
            lo, hi = self.cutmix_minmax
            if not 0.0 <= lo < hi <= 1.0:
                raise _invalid(
                    "cutmix_minmax", "must be two ratios min, max with 0 <= min < max <= 1"
                )
        first = next(f for f in ("mixup_alpha", "cutmix_alpha", "cutmix_minmax")
                     if getattr(self, f) not in (0.0, None))  # fmt: skip
        if not labelled:
            raise _invalid(first, "mixing needs a label per image and this dataset has none")
        num_classes = self.num_classes
        if num_classes is None:
            if not classes:
                raise _invalid(
                    "num_classes", "needed to mix this dataset's labels (it names no classes)"
                )
            num_classes = len(classes)
        elif classes and num_classes < len(classes):
            raise _invalid("num_classes", f"the dataset has {len(classes)} classes")
        if num_classes * batch_size > MAX_TARGET_ENTRIES:
            raise _invalid(
                "num_classes", f"batch_size x num_classes must be at most {MAX_TARGET_ENTRIES}"
            )
        return MixSpec(**{**self.__dict__, "num_classes": num_classes})


def partner_positions(size: int, seed: int, epoch: int, positions: np.ndarray) -> np.ndarray:
    """Each position's partner: the next one on the epoch's random cycle (seed, epoch)."""
    cycle, place = _cycle(size, seed, epoch)
    return cycle[(place[positions] + 1) % size]


@lru_cache(maxsize=8)
def _cycle(size: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """The epoch's cycle and each position's place on it (sorted once per stream, not per
    batch: 16 bytes a sample, a few hundred ms for an ImageNet-sized epoch)."""
    base = np.uint64(stream_base(f"{MIX_TAG}:{epoch}", seed))
    cycle = np.argsort(mix64(np.arange(size, dtype=np.uint64) ^ base), kind="stable")
    cycle = cycle.astype(np.int64, copy=False)
    place = np.empty(size, dtype=np.int64)
    place[cycle] = np.arange(size)
    cycle.flags.writeable = place.flags.writeable = False  # shared by every batch
    return cycle, place


@dataclass(frozen=True)
class Draws:
    """Per sample: ``lam`` (own weight, area-corrected; 1.0 unmixed), ``cutmix`` and
    ``box`` (y0, y1, x0, x1, half-open)."""

    lam: np.ndarray
    cutmix: np.ndarray
    box: np.ndarray


def draw(spec: MixSpec, seed: int, keys: np.ndarray, height: int, width: int) -> Draws:
    states = sample_states(stream_base(MIX_TAG, seed), keys)

    def u(slot: int, s: np.ndarray = states) -> np.ndarray:
        return uniform01(s, 0, slot)

    n = len(states)
    cut_alpha = spec.cutmix_shape
    if spec.mixup_alpha > 0 and cut_alpha > 0:
        cutmix = u(_SWITCH) < spec.switch_prob
    else:
        cutmix = np.full(n, spec.mixup_alpha == 0)
    applied = u(_APPLY) < spec.prob
    alpha = np.where(cutmix, cut_alpha, spec.mixup_alpha)
    lam = np.where(applied, _beta(states, alpha), 1.0)
    cutmix &= applied
    box = np.zeros((n, 4), dtype=np.int64)
    if cutmix.any():
        s = states[cutmix]
        box[cutmix] = _boxes(s, lam[cutmix], spec, height, width)
        if spec.correct_lam or spec.cutmix_minmax is not None:
            b = box[cutmix]
            lam[cutmix] = 1.0 - (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2]) / float(height * width)
    return Draws(lam, cutmix, box)


def _randint(states: np.ndarray, slot: int, lo, hi) -> np.ndarray:
    lo = np.asarray(lo, dtype=np.int64)
    span = np.maximum(np.asarray(hi, dtype=np.int64) - lo, 0)
    return lo + np.floor(uniform01(states, 0, slot) * span).astype(np.int64)


def _boxes(states: np.ndarray, lam: np.ndarray, spec: MixSpec, h: int, w: int) -> np.ndarray:
    """timm's rand_bbox (a box of area (1 - lam) around a uniform centre, clipped) or,
    with ``cutmix_minmax``, rand_bbox_minmax (side ratios uniform in [min, max))."""
    if spec.cutmix_minmax is not None:
        lo, hi = spec.cutmix_minmax
        cut_h = _randint(states, _BOX, int(h * lo), int(h * hi))
        cut_w = _randint(states, _BOX + 1, int(w * lo), int(w * hi))
        y0 = _randint(states, _BOX + 2, 0, h - cut_h + 1)
        x0 = _randint(states, _BOX + 3, 0, w - cut_w + 1)
        return np.stack([y0, y0 + cut_h, x0, x0 + cut_w], axis=1)
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = (h * ratio).astype(np.int64), (w * ratio).astype(np.int64)
    cy, cx = _randint(states, _BOX, 0, h), _randint(states, _BOX + 1, 0, w)
    return np.stack(
        [np.clip(cy - cut_h // 2, 0, h), np.clip(cy + (cut_h + 1) // 2, 0, h),
         np.clip(cx - cut_w // 2, 0, w), np.clip(cx + (cut_w + 1) // 2, 0, w)],
        axis=1,
    )  # fmt: skip


def _log_gamma_core(states: np.ndarray, shape: np.ndarray, which: int) -> np.ndarray:
    """log Gamma(a) per state, ``a`` = shape (+1 below 1): Marsaglia-Tsang on fixed slots
    per round, so no state's variate depends on another's rounds."""
    a = np.where(shape < 1.0, shape + 1.0, shape)
    d = a - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    out = np.zeros(len(states))
    pending = np.arange(len(states))
    for r in range(_ROUNDS):
        if not len(pending):
            break
        slot = _GAMMA + (which * _ROUNDS + r) * 3
        s = states[pending]
        u1, u2, u3 = (uniform01(s, 0, slot + i) for i in range(3))
        z = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
        dp, cp = d[pending], c[pending]
        v = (1.0 + cp * z) ** 3
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = (v > 0) & (np.log1p(-u3) < 0.5 * z * z + dp - dp * v + dp * np.log(v))
            out[pending[ok]] = np.log(dp[ok]) + np.log(v[ok])
        pending = pending[~ok]
    if len(pending):
        raise RuntimeError("gamma sampler did not converge")  # p < 1e-700 per key
    return out


def _beta(states: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Beta(alpha, alpha) as G1 / (G1 + G2); below alpha 1, ``G = G(a + 1) U^(1/a)`` with
    the boosts' logs subtracted before dividing by ``a`` (exact 0 or 1 for tiny alphas,
    where both variates underflow)."""
    diff = _log_gamma_core(states, alpha, 1) - _log_gamma_core(states, alpha, 0)
    boost = alpha < 1.0
    if boost.any():
        lu = np.log1p(-uniform01(states, 0, _BOOST + 1)) - np.log1p(-uniform01(states, 0, _BOOST))
        with np.errstate(over="ignore"):
            diff = diff + np.where(boost, lu / np.where(boost, alpha, 1.0), 0.0)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(diff))


def _weights(lam: np.ndarray, dtype: torch.dtype, device: torch.device, dims: int):
    """(lam, 1 - lam), each rounded once from float64 (the SDK's convention)."""
    shape = (len(lam),) + (1,) * (dims - 1)
    own = torch.as_tensor(lam, dtype=torch.float64).to(dtype).view(shape).to(device)
    other = torch.as_tensor(1.0 - lam, dtype=torch.float64).to(dtype).view(shape).to(device)
    return own, other


def mix_images(a: torch.Tensor, b: torch.Tensor, draws: Draws) -> torch.Tensor:
    """uint8 (N, C, H, W) ``a`` mixed with its partners ``b``: blends in float32, rounded
    half to even; CutMix rows take ``b`` inside the box. Separate multiply and add kernels
    keep CPU and CUDA bit-identical."""
    out = a.clone()
    blend = np.flatnonzero(~draws.cutmix & (draws.lam != 1.0))
    if len(blend):
        own, other = _weights(draws.lam[blend], torch.float32, a.device, 4)
        if a.device.type == "cpu":  # a row at a time in two reused buffers: cache-sized passes
            buf = torch.empty(a.shape[1:], dtype=torch.float32)
            tmp = torch.empty_like(buf)
            for j, i in enumerate(blend.tolist()):
                buf.copy_(a[i]).mul_(own[j])
                buf.add_(tmp.copy_(b[i]).mul_(other[j]))
                out[i].copy_(buf.round_().clamp_(0, 255))
        else:
            rows = torch.as_tensor(blend, device=a.device)
            mixed = a.index_select(0, rows).float().mul_(own)
            mixed.add_(b.index_select(0, rows).float().mul_(other))
            out.index_copy_(0, rows, mixed.round_().clamp_(0, 255).to(a.dtype))
    for i in np.flatnonzero(draws.cutmix).tolist():  # a slice copy per box: cost ~ box area
        y0, y1, x0, x1 = draws.box[i].tolist()
        out[i, :, y0:y1, x0:x1] = b[i, :, y0:y1, x0:x1]
    return out


def soft_targets(
    labels: torch.Tensor, partner_labels: torch.Tensor, lam: np.ndarray, spec: MixSpec
) -> torch.Tensor:
    """``lam * y + (1 - lam) * y_partner`` over smoothed one-hots (float32, on the CPU)."""
    assert spec.num_classes is not None
    n_cls = spec.num_classes
    if (
        len(labels)
        and not 0
        <= int(min(labels.min(), partner_labels.min()))
        <= int(max(labels.max(), partner_labels.max()))
        < n_cls
    ):
        raise _invalid("num_classes", f"a label is outside 0..{n_cls - 1}")
    off = spec.label_smoothing / n_cls
    on = 1.0 - spec.label_smoothing + off

    def one_hot(y: torch.Tensor) -> torch.Tensor:
        return torch.full((len(y), n_cls), off, dtype=torch.float32).scatter_(1, y.view(-1, 1), on)

    own, other = _weights(lam, torch.float32, torch.device("cpu"), 2)
    return one_hot(labels) * own + one_hot(partner_labels) * other
