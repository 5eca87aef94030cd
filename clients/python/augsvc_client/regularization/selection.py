"""Which parameters a weight penalty or weight decay applies to.

One rule is shared by :class:`~augsvc_client.regularization.WeightPenalty` and
:func:`~augsvc_client.regularization.decay_param_groups`, so switching from a loss
penalty to decoupled weight decay changes the mechanism, never the parameter set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from torch import nn

#: Module types whose weight-like parameters are regularized by default: dense and
#: convolutional kernels (transposed convolutions and ``Lazy*`` variants included,
#: as subclasses), plus the input-projection matrices of ``nn.MultiheadAttention``
#: (its output projection is an ``nn.Linear`` and is covered by that entry).
DEFAULT_DECAY_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.MultiheadAttention,
)

#: Normalisation layers. Their affine scale/shift are never weight-decayed by
#: :func:`decay_param_groups` (shrinking a norm scale towards 0 fights the norm).
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,  # Lazy* variants are subclasses
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
)

#: A rule is a module type (or tuple of types) or a glob pattern on the qualified
#: parameter name as reported by ``model.named_parameters()``, e.g. ``"features.0.weight"``
#: or ``"*.bias"``. Matching is case-sensitive (:func:`fnmatch.fnmatchcase`).
Rule = type[nn.Module] | str


def is_weight_like(local_name: str) -> bool:
    """Return True for kernel-style parameter names: ``weight``, ``weight_*``, ``*_weight``.

    Covers ``nn.Linear.weight``, RNN ``weight_ih_l0`` and attention ``in_proj_weight``;
    never biases (``bias``, ``in_proj_bias``, ``bias_k``).
    """
    return (
        local_name == "weight" or local_name.startswith("weight_") or local_name.endswith("_weight")
    )


def _split_rules(rules: Iterable[Rule] | Rule | None) -> tuple[tuple[type, ...], tuple[str, ...]]:
    if rules is None:
        return (), ()
    if isinstance(rules, str | type):
        rules = (rules,)
    types: list[type] = []
    patterns: list[str] = []
    for rule in rules:
        if isinstance(rule, str):
            patterns.append(rule)
        elif isinstance(rule, type) and issubclass(rule, nn.Module):
            types.append(rule)
        else:
            raise TypeError(f"a rule must be an nn.Module subclass or a glob string, got {rule!r}")
    return tuple(types), tuple(patterns)


def _owned_parameters(model: nn.Module) -> list[tuple[str, nn.Module, str, nn.Parameter]]:
    """(qualified name, owning module, local name, parameter), shared parameters once."""
    seen: set[int] = set()
    out: list[tuple[str, nn.Module, str, nn.Parameter]] = []
    for module_name, module in model.named_modules():
        for local_name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            qualified = f"{module_name}.{local_name}" if module_name else local_name
            out.append((qualified, module, local_name, param))
    return out


def select_parameters(
    model: nn.Module,
    *,
    include: Sequence[Rule] | Rule | None = None,
    exclude: Sequence[Rule] | Rule = (),
) -> list[tuple[str, nn.Parameter]]:
    """List the trainable ``(name, parameter)`` pairs a penalty or weight decay should cover.

    Use this to preview (or log) exactly what :class:`WeightPenalty` and
    :func:`decay_param_groups` will regularize before a long training run; both call it.

    Selection rule, in order:

    * frozen parameters (``requires_grad=False``) are never selected;
    * ``include=None`` selects the weight-like parameters (see :func:`is_weight_like`)
      of modules in :data:`DEFAULT_DECAY_TYPES` - Linear/Conv/ConvTranspose kernels and
      attention projections. Biases, normalisation parameters (BatchNorm, LayerNorm,
      GroupNorm, InstanceNorm, RMSNorm) and embeddings are *not* selected: embedding rows
      of rare tokens would be shrunk by every step while receiving few gradient updates;
      pass ``include=(*DEFAULT_DECAY_TYPES, nn.Embedding)`` if you want them;
    * an explicit ``include`` replaces the default. A module type selects the weight-like
      parameters that module owns directly; a glob pattern selects any parameter whose
      qualified name matches (so ``"*.bias"`` can opt biases in);
    * ``exclude`` wins over ``include``: a module type drops every parameter that module
      owns directly, a glob pattern drops matching names.

    Parameters shared between modules (tied weights) are listed once, under the first name.
    The order follows ``model.named_modules()``.
    """
    if include is None:
        inc_types, inc_patterns = DEFAULT_DECAY_TYPES, ()
    else:
        inc_types, inc_patterns = _split_rules(include)
    exc_types, exc_patterns = _split_rules(exclude)

    selected: list[tuple[str, nn.Parameter]] = []
    for name, module, local_name, param in _owned_parameters(model):
        if not param.requires_grad:
            continue
        included = (
            bool(inc_types) and isinstance(module, inc_types) and is_weight_like(local_name)
        ) or any(fnmatchcase(name, pattern) for pattern in inc_patterns)
        excluded = (bool(exc_types) and isinstance(module, exc_types)) or any(
            fnmatchcase(name, pattern) for pattern in exc_patterns
        )
        if included and not excluded:
            selected.append((name, param))
    return selected
