"""Soft targets: label smoothing and the cross-entropy that takes class distributions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot rows (float32, on ``labels``' device) with ``smoothing`` spread evenly.

    Use it to train a classifier against softened targets: label smoothing (0.1 is the
    common choice, ImageNet-scale; 0.05-0.2 elsewhere) stops the logits growing without
    bound to fit hard 0/1 targets, which improves calibration and slightly regularizes;
    it is what :class:`Mixup` mixes. Each row is ``1 - smoothing + smoothing / C`` at the
    label and ``smoothing / C`` elsewhere (timm's convention), so it sums to 1 and the
    smoothing mass is shared by all ``C`` classes, the label's own included."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    if labels.ndim != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-d integer tensor, got {labels.dtype} {labels.shape}")
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise ValueError(f"labels must be in 0..{num_classes - 1}")
    off = smoothing / num_classes
    on = 1.0 - smoothing + off
    out = torch.full((len(labels), num_classes), off, dtype=torch.float32, device=labels.device)
    return out.scatter_(1, labels.long().view(-1, 1), on)


class SoftTargetCrossEntropy(nn.Module):
    """Cross-entropy against class distributions: ``mean_i sum_c -t_ic log softmax(x_i)_c``.

    Use it as the training loss with :class:`Mixup` or :func:`smooth_one_hot` targets
    (rows that sum to 1); with one-hot targets it equals ``nn.CrossEntropyLoss``. Logits
    are converted to float32 (autocast-safe); evaluate with plain cross-entropy on hard
    labels."""

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if x.shape != target.shape:
            raise ValueError(f"logits {tuple(x.shape)} and targets {tuple(target.shape)} differ")
        logp = F.log_softmax(x.float(), dim=-1)
        return torch.sum(-target.float() * logp, dim=-1).mean()
