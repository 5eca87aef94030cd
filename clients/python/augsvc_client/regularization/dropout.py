"""Setting and scheduling the rate of a model's dropout layers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from torch import nn

from .drop_path import DropPath

#: Layers whose rate attribute ``p`` :func:`set_dropout` sets and :func:`mc_dropout`
#: keeps stochastic (subclasses included).
DROPOUT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    DropPath,
)


def _check_p(p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    return p


def set_dropout(
    model: nn.Module, p: float, *, types: Sequence[type[nn.Module]] = DROPOUT_TYPES
) -> int:
    """Set the rate ``p`` of every dropout layer in ``model``; return how many were set.

    Use it to change regularization strength without rebuilding the model: turn dropout
    off (``p=0``) for a fine-tuning stage, raise it when a model overfits a small data
    set, or sweep the rate on validation data. Dropout belongs between dense (fully
    connected) layers and before a classifier head (0.1-0.5); ``nn.Dropout2d`` drops
    whole conv channels. Covers ``nn.Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout``,
    ``FeatureAlphaDropout`` and :class:`DropPath` (``types`` narrows or widens this).
    Attention-probability dropout stored as a float inside ``nn.MultiheadAttention``
    (its ``dropout`` attribute) is not a layer and is left alone.
    """
    p = _check_p(p)
    types = tuple(types)
    count = 0
    for module in model.modules():
        if isinstance(module, types):
            module.p = p
            count += 1
    return count


class DropoutSchedule:
    """Anneal every dropout rate in a model from ``start_p`` to ``end_p`` over training.

    Use it when one fixed rate is a poor compromise: "early dropout" (start high, end at
    0) helps underfitting models, "late dropout" / curriculum dropout (start at 0, ramp
    up) lets a model fit first and regularizes once it starts to overfit. Choose the
    end points on validation data. Call :meth:`step` once per optimizer step (or epoch -
    ``total_steps`` is in whatever unit you step in).

    ``p_at(step)`` is ``start_p`` for ``step <= warmup_steps``, then moves to ``end_p``
    over ``[warmup_steps, total_steps]`` - linearly or along a half cosine
    (``start + (end - start) * (1 - cos(pi * t)) / 2``) - and stays at ``end_p`` after
    ``total_steps``. The constructor applies ``p_at(0)`` to the model; ``step()`` advances
    the counter by one and applies the new rate. ``state_dict()`` / ``load_state_dict()``
    save and restore the counter and settings (like ``torch.optim.lr_scheduler``).
    """

    def __init__(
        self,
        model: nn.Module,
        start_p: float,
        end_p: float,
        total_steps: int,
        mode: Literal["linear", "cosine"] = "linear",
        warmup_steps: int = 0,
        *,
        types: Sequence[type[nn.Module]] = DROPOUT_TYPES,
    ) -> None:
        self.model = model
        self.types = tuple(types)
        self.start_p = _check_p(start_p)
        self.end_p = _check_p(end_p)
        if mode not in ("linear", "cosine"):
            raise ValueError(f"mode must be 'linear' or 'cosine', got {mode!r}")
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps], got {warmup_steps}")
        self.mode = mode
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.step_count = 0
        self._apply()

    def p_at(self, step: int) -> float:
        """The rate at ``step`` (a pure function of the settings; the model is untouched)."""
        if step >= self.total_steps:
            t = 1.0
        elif step <= self.warmup_steps:
            t = 0.0
        else:
            t = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        if self.mode == "cosine":
            t = 0.5 * (1.0 - math.cos(math.pi * t))
        return self.start_p + (self.end_p - self.start_p) * t

    @property
    def p(self) -> float:
        """The rate currently applied (``p_at(step_count)``)."""
        return self.p_at(self.step_count)

    def step(self) -> float:
        """Advance one step, apply the new rate to every dropout layer, and return it."""
        self.step_count += 1
        return self._apply()

    def _apply(self) -> float:
        p = self.p
        set_dropout(self.model, p, types=self.types)
        return p

    def state_dict(self) -> dict[str, Any]:
        return {
            "step_count": self.step_count,
            "start_p": self.start_p,
            "end_p": self.end_p,
            "total_steps": self.total_steps,
            "mode": self.mode,
            "warmup_steps": self.warmup_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counter and settings from :meth:`state_dict`, then apply the rate."""
        for key in ("start_p", "end_p", "total_steps", "mode", "warmup_steps", "step_count"):
            setattr(self, key, state[key])
        self._apply()
