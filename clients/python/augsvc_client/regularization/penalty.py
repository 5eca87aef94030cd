"""L1 / L2 / elastic-net weight penalties added to the training loss."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .selection import Rule, select_parameters


class WeightPenalty:
    """Loss term ``l1 * sum|w| + l2 * 0.5 * sum(w**2)`` over a model's kernel weights.

    Use it when the penalty has to be part of the loss: L2 ("ridge") for linear models
    and CNN kernels trained with SGD, L1 (``l1>0``) when you want sparse weights that a
    later pruning step can drop, elastic net (both) when features are correlated and you
    want sparsity without L1's arbitrary pick among them. With Adam-type optimizers prefer
    decoupled weight decay (``torch.optim.AdamW`` with :func:`decay_param_groups`) over an
    L2 loss term: Adam rescales the penalty's gradient per parameter, so large weights
    are decayed less than intended. Tune ``l1``/``l2`` on held-out validation data
    (log-spaced, e.g. 1e-6 .. 1e-2), never on the training loss, which they only raise.

    Convention: the L2 term carries a factor one half, so its gradient is exactly
    ``l2 * w`` - the same update as SGD's ``weight_decay=l2`` - and the L1 gradient is
    ``l1 * sign(w)`` (0 at ``w == 0``). The returned value is the penalty alone; add it
    to the data loss yourself: ``loss = criterion(out, y) + penalty()``.

    Which parameters: see :func:`select_parameters` - by default the weights of
    ``nn.Linear``, ``nn.Conv{1,2,3}d``, ``nn.ConvTranspose{1,2,3}d`` and attention
    projections; biases, normalisation parameters and embeddings are skipped, and so are
    frozen parameters. ``include`` / ``exclude`` take module types or glob patterns on
    qualified names (``"features.0.weight"``, ``"head.*"``). The list is resolved once,
    here: parameters added or unfrozen later are not picked up - build a new penalty.

    The value is computed in float32 independent of autocast and of the parameters'
    dtype (bf16/fp16 weights are accumulated in float32), and is a float32 0-d tensor on
    the device of the first selected parameter. On CUDA (and other accelerators) each
    norm is one fused ``torch._foreach_norm`` multi-tensor pass per device; on CPU, where
    foreach ops are a plain loop anyway, a per-parameter ``sum`` (cascade summation,
    more accurate for large tensors) is used, and it is also the fallback when foreach
    is unavailable.
    """

    def __init__(
        self,
        model: nn.Module,
        l1: float = 0.0,
        l2: float = 0.0,
        *,
        include: Sequence[Rule] | Rule | None = None,
        exclude: Sequence[Rule] | Rule = (),
    ) -> None:
        self.l1 = l1
        self.l2 = l2
        named = select_parameters(model, include=include, exclude=exclude)
        for name, param in named:
            if isinstance(param, nn.parameter.UninitializedParameter):
                raise ValueError(
                    f"parameter {name!r} is not initialised yet (lazy module): run one "
                    "forward pass before building the penalty"
                )
        self.names: tuple[str, ...] = tuple(name for name, _ in named)
        self.params: tuple[nn.Parameter, ...] = tuple(param for _, param in named)
        by_device: dict[torch.device, list[nn.Parameter]] = {}
        for param in self.params:
            by_device.setdefault(param.device, []).append(param)
        self._by_device = list(by_device.values())
        self._use_foreach = hasattr(torch, "_foreach_norm")

    @property
    def l1(self) -> float:
        return self._l1

    @l1.setter
    def l1(self, value: float) -> None:
        self._l1 = _check_strength("l1", value)

    @property
    def l2(self) -> float:
        return self._l2

    @l2.setter
    def l2(self, value: float) -> None:
        self._l2 = _check_strength("l2", value)

    def __len__(self) -> int:
        return len(self.params)

    def __repr__(self) -> str:
        return f"WeightPenalty(l1={self.l1}, l2={self.l2}, params={len(self.params)})"

    def __call__(self) -> torch.Tensor:
        device = self.params[0].device if self.params else torch.device("cpu")
        total = torch.zeros((), dtype=torch.float32, device=device)
        if not self.params or (self.l1 == 0.0 and self.l2 == 0.0):
            return total
        for params in self._by_device:
            part = None
            if self.l1 != 0.0:
                part = self.l1 * self._sum_abs(params)
            if self.l2 != 0.0:
                l2_part = (0.5 * self.l2) * self._sum_squares(params)
                part = l2_part if part is None else part + l2_part
            total = total + part.to(device)
        return total

    def _fused(self, params: list[nn.Parameter]) -> bool:
        # On CUDA-like devices _foreach_norm is one multi-tensor kernel with tree reductions.
        # On CPU it is a plain loop over vector_norm, whose float32 accumulation loses ~0.5%
        # on 1e6-element tensors; torch.sum's cascade summation is exact to rounding there.
        return self._use_foreach and params[0].device.type != "cpu"

    def _foreach_norms(self, params: list[nn.Parameter], order: int) -> torch.Tensor | None:
        try:
            return torch.stack(torch._foreach_norm(params, order, dtype=torch.float32))
        except (RuntimeError, TypeError, NotImplementedError):
            self._use_foreach = False  # e.g. an older torch without dtype=: loop from now on
            return None

    def _sum_abs(self, params: list[nn.Parameter]) -> torch.Tensor:
        """sum_i |w_i| over ``params`` in float32 (gradient ``sign(w)``)."""
        if self._fused(params) and (norms := self._foreach_norms(params, 1)) is not None:
            return norms.sum()
        return torch.stack([p.abs().sum(dtype=torch.float32) for p in params]).sum()

    def _sum_squares(self, params: list[nn.Parameter]) -> torch.Tensor:
        """sum_i w_i**2 over ``params`` in float32 (gradient ``2 * w``)."""
        if self._fused(params) and (norms := self._foreach_norms(params, 2)) is not None:
            return (norms * norms).sum()
        squares = []
        for p in params:
            p32 = p.float()
            squares.append((p32 * p32).sum())
        return torch.stack(squares).sum()


def _check_strength(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value
