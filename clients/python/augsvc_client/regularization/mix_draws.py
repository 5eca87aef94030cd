"""Counter-based draws of MixUp / CutMix parameters: a pure function of (seed, key).

The hash is the server's (splitmix64's finaliser over ``hash(tag, seed)`` and the sample
key), written again here because the SDK never imports the server; a parity test holds
the two to the same numbers. So a batch mixed in the training loop with the keys a
stream sent is mixed exactly as the server mixes that stream, and the same (seed, keys)
give the same lambdas and boxes on every machine, with no generator state to save.

Draw slots of one key (part of the reproducibility contract):

* 0: the apply coin (``prob``); 1: the CutMix-or-MixUp coin (``switch_prob``);
* 2, 3: the box centre (y, x), or with ``cutmix_minmax`` the cut height and width;
* 4, 5: with ``cutmix_minmax``, the box's top-left corner (y, x);
* 6, 7: the small-alpha boost of the two gamma variates (``alpha < 1``);
* 8 onwards: Marsaglia-Tsang rounds of the two gamma variates, three slots a round.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SLOTS_PER_OP = 1 << 12
#: The tag hashed with the seed: mixing draws never collide with a recipe's draws.
MIX_TAG = "mix"
MAX_SEED = _MASK

APPLY, SWITCH, BOX = 0, 1, 2
_BOOST = 6
_GAMMA = 8
#: Marsaglia-Tsang accepts >95% of rounds (shape >= 1); 600 rounds fit the slot space.
_ROUNDS = 600


def _mix64(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _mix_int(x: int) -> int:
    return int(_mix64(np.array([x & _MASK], dtype=np.uint64))[0])


def stream_base(tag: str, seed: int) -> int:
    """The 64-bit root of one (tag, seed) stream of draws."""
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be in 0..{MAX_SEED}, got {seed}")
    d = int.from_bytes(hashlib.sha256(tag.encode()).digest()[:8], "little")
    return _mix_int(d ^ _mix_int(int(seed) + _GOLDEN))


def key_states(seed: int, keys: np.ndarray) -> np.ndarray:
    """One 64-bit state per sample key (non-negative integers)."""
    k = np.asarray(keys, dtype=np.int64)
    if k.ndim != 1:
        raise ValueError(f"keys must be one integer per sample, got shape {k.shape}")
    if (k < 0).any():
        raise ValueError("sample keys must be non-negative integers")
    base = np.uint64(stream_base(MIX_TAG, seed))
    with np.errstate(over="ignore"):
        return _mix64(base ^ _mix64(k.astype(np.uint64) * np.uint64(_GOLDEN) + np.uint64(1)))


def combined_state(states: np.ndarray) -> np.ndarray:
    """One state from a whole batch's states, in order (for one draw per batch)."""
    h = np.zeros(1, dtype=np.uint64)
    for s in states:
        h = _mix64(h ^ s)
    return h


def uniform(states: np.ndarray, slot: int) -> np.ndarray:
    """float64 in [0, 1) for draw ``slot`` of each state."""
    if not 0 <= slot < _SLOTS_PER_OP:
        raise ValueError(f"slot must be in 0..{_SLOTS_PER_OP - 1}")
    counter = np.uint64(_mix_int(slot + _GOLDEN))
    bits = _mix64(states ^ counter)
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _log_gamma_core(states: np.ndarray, shape: np.ndarray, which: int) -> np.ndarray:
    """log of a Gamma(a, 1) variate per state, ``a`` = shape (+1 below shape 1), by
    Marsaglia-Tsang. Each round uses fixed slots, so a state's variate does not depend
    on how many rounds other states needed."""
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
        u1, u2, u3 = uniform(s, slot), uniform(s, slot + 1), uniform(s, slot + 2)
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


def beta_symmetric(states: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Beta(alpha, alpha) per state (alpha > 0, one per state), as G1 / (G1 + G2).

    Below alpha 1 each variate is boosted, ``G = G(a + 1) * U ** (1 / a)``; the ratio is
    taken as ``1 / (1 + exp(log G2 - log G1))`` with the two boosts' logs subtracted
    before dividing by ``a``, so it stays exact (0 or 1, never NaN) for tiny alphas,
    where both variates underflow."""
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), states.shape)
    diff = _log_gamma_core(states, alpha, 1) - _log_gamma_core(states, alpha, 0)
    boost = alpha < 1.0
    if boost.any():
        lu = np.log1p(-uniform(states, _BOOST + 1)) - np.log1p(-uniform(states, _BOOST))
        with np.errstate(over="ignore"):
            diff = diff + np.where(boost, lu / np.where(boost, alpha, 1.0), 0.0)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(diff))


@dataclass(frozen=True)
class MixSettings:
    """timm's Mixup settings, checked once (``cutmix_minmax`` forces ``cutmix_alpha=1``)."""

    mixup_alpha: float = 1.0
    cutmix_alpha: float = 0.0
    cutmix_minmax: tuple[float, float] | None = None
    prob: float = 1.0
    switch_prob: float = 0.5
    correct_lam: bool = True

    def __post_init__(self) -> None:
        for name in ("mixup_alpha", "cutmix_alpha"):
            value = float(getattr(self, name))
            if not np.isfinite(value) or value < 0.0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        for name in ("prob", "switch_prob"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.cutmix_minmax is not None:
            lo, hi = (float(v) for v in self.cutmix_minmax)
            if not 0.0 <= lo < hi <= 1.0:
                raise ValueError(
                    f"cutmix_minmax must be (min, max), 0 <= min < max <= 1: {self.cutmix_minmax}"
                )
            object.__setattr__(self, "cutmix_minmax", (lo, hi))
            object.__setattr__(self, "cutmix_alpha", 1.0)
        if self.mixup_alpha == 0.0 and self.cutmix_alpha == 0.0:
            raise ValueError("one of mixup_alpha > 0, cutmix_alpha > 0 or cutmix_minmax is needed")


@dataclass(frozen=True)
class MixDraws:
    """Per-state mixing parameters: ``lam`` (the weight of the sample itself, after the
    CutMix area correction; 1.0 where nothing is mixed), ``applied``, ``cutmix`` and
    ``box`` (y0, y1, x0, x1; half-open, empty unless ``cutmix``)."""

    lam: np.ndarray
    applied: np.ndarray
    cutmix: np.ndarray
    box: np.ndarray


def draw_mix(states: np.ndarray, settings: MixSettings, height: int, width: int) -> MixDraws:
    """timm's per-element draws (``_params_per_elem`` + ``cutmix_bbox_and_lam``) from
    counter-based uniforms instead of numpy's global generator."""
    n = len(states)
    both = settings.mixup_alpha > 0.0 and settings.cutmix_alpha > 0.0
    if both:
        cutmix = uniform(states, SWITCH) < settings.switch_prob
    else:
        cutmix = np.full(n, settings.mixup_alpha == 0.0)
    applied = uniform(states, APPLY) < settings.prob
    alpha = np.where(cutmix, settings.cutmix_alpha, settings.mixup_alpha)
    lam = np.where(applied, beta_symmetric(states, alpha), 1.0)
    cutmix &= applied
    box = np.zeros((n, 4), dtype=np.int64)
    if cutmix.any():
        box[cutmix] = _boxes(states[cutmix], lam[cutmix], settings, height, width)
        if settings.correct_lam or settings.cutmix_minmax is not None:
            b = box[cutmix]
            area = (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2])
            lam[cutmix] = 1.0 - area / float(height * width)
    return MixDraws(lam=lam, applied=applied, cutmix=cutmix, box=box)


def _boxes(
    states: np.ndarray, lam: np.ndarray, settings: MixSettings, h: int, w: int
) -> np.ndarray:
    if settings.cutmix_minmax is not None:
        lo, hi = settings.cutmix_minmax
        cut_h = _randint(states, BOX, int(h * lo), int(h * hi))
        cut_w = _randint(states, BOX + 1, int(w * lo), int(w * hi))
        y0 = _randint(states, BOX + 2, 0, h - cut_h + 1)
        x0 = _randint(states, BOX + 3, 0, w - cut_w + 1)
        return np.stack([y0, y0 + cut_h, x0, x0 + cut_w], axis=1)
    ratio = np.sqrt(1.0 - lam)
    cut_h = (h * ratio).astype(np.int64)
    cut_w = (w * ratio).astype(np.int64)
    cy = _randint(states, BOX, 0, h)
    cx = _randint(states, BOX + 1, 0, w)
    return np.stack(
        [
            np.clip(cy - cut_h // 2, 0, h),
            np.clip(cy + (cut_h + 1) // 2, 0, h),
            np.clip(cx - cut_w // 2, 0, w),
            np.clip(cx + (cut_w + 1) // 2, 0, w),
        ],
        axis=1,
    )


def _randint(states: np.ndarray, slot: int, lo, hi) -> np.ndarray:
    """Integers uniform in [lo, hi) (``lo`` where the range is empty), like numpy's randint."""
    lo = np.asarray(lo, dtype=np.int64)
    span = np.maximum(np.asarray(hi, dtype=np.int64) - lo, 0)
    return lo + np.floor(uniform(states, slot) * span).astype(np.int64)
