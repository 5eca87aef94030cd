"""Monte-Carlo dropout: dropout kept on at inference to estimate predictive uncertainty."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from .dropout import DROPOUT_TYPES


@contextmanager
def mc_dropout(
    model: nn.Module, *, types: Sequence[type[nn.Module]] = DROPOUT_TYPES
) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode but its dropout layers in train mode, for the ``with`` body.

    Use it for Monte-Carlo dropout: repeated stochastic forward passes of a model trained
    with dropout approximate samples from a predictive distribution, so their spread is a
    cheap uncertainty estimate (out-of-distribution inputs, active learning, abstaining
    on low-confidence predictions) without retraining. Everything else - BatchNorm in
    particular - stays in eval mode, using its running statistics. On exit, normal or by
    exception, every submodule's ``training`` flag is restored to what it was before.
    :class:`DropPath` layers count as dropout layers (stochastic depth sampling).
    """
    types = tuple(types)
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        for module in model.modules():
            if isinstance(module, types):
                module.train()
        yield model
    finally:
        for module, training in modes:
            module.training = training


def mc_predict(
    model: nn.Module, x: Any, n: int = 20, *, types: Sequence[type[nn.Module]] = DROPOUT_TYPES
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of ``n`` Monte-Carlo-dropout forward passes ``model(x)``.

    Use it to get a prediction together with an uncertainty estimate from a model trained
    with dropout (see :func:`mc_dropout`); average class probabilities rather than logits
    if the model's output is logits (wrap it: ``nn.Sequential(model, nn.Softmax(-1))``).
    20-100 passes are typical; the estimate's noise shrinks like ``1/sqrt(n)``.

    Runs under ``torch.no_grad()`` inside :func:`mc_dropout`; ``model(x)`` must return a
    tensor. The statistics are accumulated with Welford's algorithm in at least float32,
    without keeping the ``n`` outputs; ``std`` is the sample standard deviation (divisor
    ``n - 1``), exactly 0 where all passes agree (e.g. every dropout rate is 0).
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 to estimate a standard deviation, got {n}")
    mean: torch.Tensor | None = None
    m2: torch.Tensor | None = None
    with torch.no_grad(), mc_dropout(model, types=types):
        for k in range(1, n + 1):
            out = model(x)
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"model(x) must return a tensor, got {type(out).__name__}")
            out = out.to(torch.promote_types(out.dtype, torch.float32))
            if mean is None or m2 is None:
                mean, m2 = out.clone(), torch.zeros_like(out)
                continue
            delta = out - mean
            mean += delta / k
            m2 += delta * (out - mean)
    assert mean is not None and m2 is not None
    return mean, (m2 / (n - 1)).sqrt()
