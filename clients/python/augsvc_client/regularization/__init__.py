"""Regularization helpers for torch models (requires the ``torch`` extra).

Small, dependency-free utilities in the spirit of timm:

* :class:`WeightPenalty` - L1 / L2 / elastic-net loss penalty on kernel weights.
* :func:`decay_param_groups` - decayed / no-decay groups for decoupled weight decay (AdamW).
* :func:`select_parameters` - the shared rule deciding which parameters are regularized.
* :func:`set_dropout`, :class:`DropoutSchedule` - set or anneal dropout rates.
* :func:`mc_dropout`, :func:`mc_predict` - Monte-Carlo dropout uncertainty.
* :class:`DropPath`, :func:`drop_path` - stochastic depth for residual networks.
* :class:`Mixup` - MixUp / CutMix with label smoothing, drawn from (seed, sample keys).
* :func:`smooth_one_hot`, :class:`SoftTargetCrossEntropy` - soft targets and their loss.

Import it explicitly: ``from augsvc_client.regularization import WeightPenalty``.
"""

from .drop_path import DropPath, drop_path
from .dropout import DROPOUT_TYPES, DropoutSchedule, set_dropout
from .mc_dropout import mc_dropout, mc_predict
from .mixup import MixParams, Mixup, mix_images, mix_targets
from .param_groups import decay_param_groups
from .penalty import WeightPenalty
from .selection import DEFAULT_DECAY_TYPES, NORM_TYPES, select_parameters
from .soft_targets import SoftTargetCrossEntropy, smooth_one_hot

__all__ = [
    "DEFAULT_DECAY_TYPES",
    "DROPOUT_TYPES",
    "NORM_TYPES",
    "DropPath",
    "DropoutSchedule",
    "MixParams",
    "Mixup",
    "SoftTargetCrossEntropy",
    "WeightPenalty",
    "decay_param_groups",
    "drop_path",
    "mc_dropout",
    "mc_predict",
    "mix_images",
    "mix_targets",
    "select_parameters",
    "set_dropout",
    "smooth_one_hot",
]
