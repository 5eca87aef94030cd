"""Stochastic depth: drop a residual branch for whole samples."""

from __future__ import annotations

import torch
from torch import nn


def drop_path(
    x: torch.Tensor,
    p: float = 0.0,
    training: bool = False,
    scale_by_keep: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Zero ``x`` for a random subset of samples (dim 0) with probability ``p`` each.

    Use it on the residual branch of a residual network (``x + drop_path(block(x), p,
    self.training)``) to train with stochastic depth: each sample sees a randomly
    shallower network, which regularizes deep ResNets / ViTs where element-wise dropout
    works poorly. Rates usually grow linearly with depth up to 0.1-0.3 at the last block;
    tune on validation data. Do not apply it to a path without a skip connection - that
    would zero the sample's whole activation.

    ``training=False`` or ``p == 0`` returns ``x`` itself. Otherwise each sample is kept
    with probability ``1 - p`` and, with ``scale_by_keep``, kept samples are divided by
    ``1 - p`` so the expected value equals ``x``. ``p == 1`` zeros every sample. ``generator``
    (on ``x``'s device) makes the mask reproducible without touching the global RNG.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if x.ndim == 0:
        raise ValueError("drop_path needs a batch dimension (x.ndim >= 1)")
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep, generator=generator)
    if scale_by_keep and keep > 0.0:
        mask.div_(keep)
    return x * mask


class DropPath(nn.Module):
    """Stochastic depth (per-sample drop path) as a module; see :func:`drop_path`.

    Use it inside residual blocks of deep residual networks (ResNets, ViTs, ConvNeXt):
    ``x = x + self.drop_path(self.block(x))``. It is an identity in ``eval()`` mode.
    Its rate ``p`` is an attribute, so :func:`set_dropout`, :class:`DropoutSchedule` and
    :func:`mc_dropout` treat it like the ``torch.nn`` dropout layers.
    """

    def __init__(self, p: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability must be in [0, 1], got {p}")
        self.p = p
        self.scale_by_keep = scale_by_keep

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return drop_path(x, self.p, self.training, self.scale_by_keep, generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, scale_by_keep={self.scale_by_keep}"
