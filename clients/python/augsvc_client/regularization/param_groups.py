"""Optimizer parameter groups for decoupled weight decay (AdamW)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from .selection import NORM_TYPES, Rule, select_parameters


def decay_param_groups(
    model: nn.Module,
    weight_decay: float,
    *,
    include: Sequence[Rule] | Rule | None = None,
    exclude: Sequence[Rule] | Rule = (),
    lr: float | None = None,
    no_decay_types: Sequence[type[nn.Module]] = NORM_TYPES,
) -> list[dict[str, Any]]:
    """Split trainable parameters into a weight-decayed and a no-decay optimizer group.

    Use it with ``torch.optim.AdamW`` (or SGD's ``weight_decay``) when you want L2-style
    shrinkage of kernel weights without putting a penalty in the loss - decoupled weight
    decay is the right choice for Adam-type optimizers, which would otherwise rescale an
    L2 loss gradient per parameter - and without decaying biases or normalisation scales,
    which only hurts. Typical values: 0.01-0.1 for AdamW, 1e-5-5e-4 for SGD; tune on
    validation data. ``torch.optim.AdamW(decay_param_groups(model, 0.05), lr=1e-3)``.

    The decayed group holds the parameters :func:`select_parameters` picks with the same
    ``include`` / ``exclude`` (by default: Linear/Conv/ConvTranspose weights and attention
    projections, exactly what :class:`WeightPenalty` penalizes), minus - as a safety net
    even for a broad ``include`` such as ``["*"]`` - every 0-d/1-d parameter, every
    parameter whose name ends in ``bias`` and every parameter owned by a module in
    ``no_decay_types`` (normalisation layers by default). The no-decay group
    (``weight_decay=0.0``) holds every other trainable parameter, so each trainable
    parameter appears in exactly one group; frozen parameters appear in none.

    Returns a list of dicts ``{"params": [...], "weight_decay": float}`` (plus ``"lr"``
    when given), decayed group first; an empty group is omitted.
    """
    if weight_decay < 0.0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    no_decay_types = tuple(no_decay_types)
    no_decay_owned: set[int] = set()
    if no_decay_types:
        for module in model.modules():
            if isinstance(module, no_decay_types):
                no_decay_owned.update(id(p) for p in module.parameters(recurse=False))

    decay_ids = {
        id(param)
        for name, param in select_parameters(model, include=include, exclude=exclude)
        if param.ndim >= 2 and not name.endswith("bias") and id(param) not in no_decay_owned
    }
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for param in model.parameters():  # deduplicates shared parameters
        if not param.requires_grad:
            continue
        (decay if id(param) in decay_ids else no_decay).append(param)

    groups: list[dict[str, Any]] = []
    for params, decay_value in ((decay, float(weight_decay)), (no_decay, 0.0)):
        if not params:
            continue
        group: dict[str, Any] = {"params": params, "weight_decay": decay_value}
        if lr is not None:
            group["lr"] = lr
        groups.append(group)
    return groups
