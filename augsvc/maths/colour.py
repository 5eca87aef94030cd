"""Colour maths: a run of colour ops fuses into one per-sample affine map.

Brightness, saturation, hue (a rotation of chroma in YIQ space, as DALI's ``hue``)
and grayscale are linear 3x3 maps of RGB. Contrast blends with the mean luma of
the image as it is at that point, which is itself linear in the mean RGB ``m`` of
the stage's input. So a whole run is ``y = A x + B m`` per sample: ``A`` and ``B``
are composed here in float64 from the sampled factors, and the pixels are touched
once (one batched matmul, one clamp at the end) instead of once per op.
"""

from __future__ import annotations

import numpy as np
import torch

from augsvc.maths.device import execution

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601, as torchvision's rgb_to_grayscale
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)
_ONES_LUMA = np.outer(np.ones(3), LUMA)  # x -> luma replicated over RGB


def brightness(b: np.ndarray) -> np.ndarray:
    return b[:, None, None] * np.eye(3)


def saturation(s: np.ndarray) -> np.ndarray:
    """s*x + (1-s)*luma(x), torchvision's adjust_saturation without the clamp."""
    return s[:, None, None] * np.eye(3) + (1 - s)[:, None, None] * _ONES_LUMA


def hue(shift_turns: np.ndarray) -> np.ndarray:
    """Rotate (I, Q) by shift * 360 degrees; positive moves red towards green, as HSV."""
    t = 2 * np.pi * shift_turns
    r = np.broadcast_to(np.eye(3), (len(t), 3, 3)).copy()
    r[:, 1, 1] = np.cos(t)
    r[:, 1, 2] = np.sin(t)
    r[:, 2, 1] = -np.sin(t)
    r[:, 2, 2] = np.cos(t)
    return _YIQ_TO_RGB @ r @ _RGB_TO_YIQ


def grayscale(on: np.ndarray) -> np.ndarray:
    return np.where(on[:, None, None], _ONES_LUMA, np.eye(3))


class ColourMap:
    """Accumulates ``y = A x + B m`` over a run of colour ops (all arrays float64)."""

    def __init__(self, n: int) -> None:
        self.a = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
        self.b = np.zeros((n, 3, 3))

    def linear(self, m: np.ndarray) -> None:
        self.a = m @ self.a
        self.b = m @ self.b

    def contrast(self, c: np.ndarray) -> None:
        """c*x + (1-c)*mean(luma(x)): the current mean RGB is (A + B) m."""
        c3 = c[:, None, None]
        self.b = c3 * self.b + (1 - c3) * (_ONES_LUMA @ (self.a + self.b))
        self.a = c3 * self.a

    @property
    def uses_mean(self) -> bool:
        return bool(np.any(self.b != 0))


#: Fraction bits of the fixed-point sums :func:`exact_means` adds: float32 values are
#: exact in it from 2^(23 - MEAN_BITS) up, and a sum of 2^27 values below 2^20 fits int64.
MEAN_BITS = 16


def exact_means(x: torch.Tensor) -> torch.Tensor:
    """The mean over the last axis of float ``x`` (N, C, L), independent of the order
    its values are added in, so of how a device splits the reduction.

    CUDA reductions pick their block shape from the number of outputs, so a float sum's
    last bits (and a pixel rounded from it) would change with the batch size. Each value
    is quantised to a 2^-MEAN_BITS grid and summed as an integer, where addition is
    associative: every order gives the same sum, on any device and in any batch."""
    q = torch.round(x * float(2**MEAN_BITS)).to(torch.int64)
    total = q.sum(dim=-1, keepdim=True).to(torch.float64)
    return (total / (float(2**MEAN_BITS) * x.shape[-1])).to(x.dtype)


def sample_means(x: torch.Tensor) -> torch.Tensor:
    """Per-sample, per-channel means of (N, C, L) as (N, C, 1). On the CPU a row's sum
    does not depend on the batch and is kept as it always was (golden bytes); elsewhere
    :func:`exact_means`."""
    if execution(x.device).order_free_means:
        return exact_means(x)
    return x.mean(dim=2, keepdim=True)


def luma_gain(m: torch.Tensor) -> torch.Tensor:
    """``luma · M · 1`` for each (3, 3) map of ``m`` (N, 3, 3): what the map does to a
    grey pixel. Written as elementwise products and sums in a fixed order, because a
    matmul of a vector with the stacked maps folds the batch into one GEMM whose blocking
    (and so whose last bits) follows N: a grey sample's pixels moved with its batch."""
    rows = m[:, 0] * float(LUMA[0]) + m[:, 1] * float(LUMA[1]) + m[:, 2] * float(LUMA[2])
    return rows[:, 0] + rows[:, 1] + rows[:, 2]


def apply_colour(
    x: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None, hi: float
) -> torch.Tensor:
    """Apply ``y = A x + B m`` to float images (N,C,H,W) in [0, hi], C in {1, 3, 4}.

    Grey images take the luma-projected scalar form of the map (brightness and
    contrast act; saturation and hue have nothing to act on); alpha passes through.
    """
    n, c, h, w = x.shape
    if c == 1:
        y = x * luma_gain(a).view(n, 1, 1, 1)
        if b is not None:
            if execution(x.device).order_free_means:
                mean = exact_means(x.reshape(n, 1, h * w)).view(n)
            else:
                mean = x.mean(dim=(1, 2, 3))
            offset = luma_gain(b) * mean
            y = y + offset.view(n, 1, 1, 1)
        return y.clamp_(0, hi)
    rgb = x[:, :3].reshape(n, 3, h * w)
    if b is not None:
        offset = torch.bmm(b, sample_means(rgb))
        y = torch.baddbmm(offset, a, rgb)
    else:
        y = torch.bmm(a, rgb)
    y = y.clamp_(0, hi).view(n, 3, h, w)
    if c == 4:
        y = torch.cat([y, x[:, 3:]], dim=1)
    return y
