"""timm_auto_augment: a timm policy string, run with timm's semantics."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from augsvc.maths.rng import Draws
from augsvc.ops import _timm
from augsvc.ops._composite import CompositeOp, Selection
from augsvc.ops._timm import TimmEntry, TimmPolicy
from augsvc.ops.augmix import AugMix, _column
from augsvc.ops.base import Canvas, Op, OpKind, Params
from augsvc.ops.registry import register
from augsvc.ops.trivial_augment_wide import TrivialAugmentWide


@register
class TimmAutoAugment(Op):
    """A timm augmentation string as a user would paste it from a timm training
    config: ``rand-m9-mstd0.5-inc1`` (RandAugment: ``m`` magnitude of 10, ``n`` ops,
    ``p`` chance each op applies, ``mstd`` Gaussian magnitude noise (above 100:
    uniform), ``mmax`` the magnitude's cap, ``inc1`` the increasing op variants,
    ``tweights`` weighted choice), ``augmix-m5-w4-d2`` (AugMix: ``m`` severity, ``w``
    width, ``d`` depth, ``a`` alpha, ``mstd``), or ``trivialaugment`` (torchvision's
    TrivialAugmentWide; timm has no such string). Parsed with timm's grammar and run
    with timm's level-to-argument functions; ``policy`` and ``table`` are the parsed
    settings and timm's op table (filled in: the digest pins them). A section timm
    does not know is refused, naming it. Differences from timm's PIL pipeline: the
    warp's interpolation and fill are the recipe's ``output`` ones (timm picks
    bilinear or bicubic per op and fills with the dataset mean)."""

    kind: ClassVar[OpKind] = "policy"
    example: ClassVar[dict[str, Any]] = {"config": "rand-m9-mstd0.5-inc1"}
    op: Literal["timm_auto_augment"] = "timm_auto_augment"
    config: str = Field(max_length=200, description="timm's string, e.g. rand-m9-mstd0.5-inc1.")
    policy: TimmPolicy | None = None
    table: tuple[TimmEntry, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _derived_last(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {**data, "policy": data.get("policy"), "table": data.get("table")}
        return data

    @field_validator("config")
    @classmethod
    def _config(cls, v: str) -> str:
        _timm.parse(v)  # a bad section is named against this field
        return v

    @field_validator("policy", mode="before")
    @classmethod
    def _policy(cls, v: Any, info: ValidationInfo) -> TimmPolicy | None:
        config = info.data.get("config")
        if config is None:
            return None
        parsed = _timm.parse(config)
        if v is not None and _settings(v) != parsed:
            raise ValueError("policy is derived from config; leave it out")
        return parsed

    @field_validator("table", mode="before")
    @classmethod
    def _table(cls, v: Any, info: ValidationInfo) -> tuple[TimmEntry, ...] | None:
        policy = info.data.get("policy")
        if policy is None or policy.kind == "trivialaugment":
            expected: tuple[TimmEntry, ...] | None = None
        else:
            expected = _timm.table(policy)
        if v is not None and _entries(v) != expected:
            raise ValueError("table is derived from config; leave it out")
        return expected

    def peak_copies(self) -> int:
        return self.expand().peak_copies()

    def expand(self) -> Op:
        assert self.policy is not None
        if self.policy.kind == "trivialaugment":
            return TrivialAugmentWide(p=self.p)
        if self.policy.kind == "augmix":
            return TimmAugMix(p=self.p, policy=self.policy, entries=self.table or ())
        return TimmRand(p=self.p, policy=self.policy, entries=self.table or ())


def _entries(v: Any) -> tuple[TimmEntry, ...] | None:
    """A table sent back, or None when it is not one."""
    try:
        return tuple(TimmEntry.model_validate(e) for e in v)
    except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
        return None


def _settings(v: Any) -> TimmPolicy | None:
    try:
        return TimmPolicy.model_validate(v)
    except ValueError:
        return None


def _levels(policy: TimmPolicy, draws: Draws, slot: int) -> np.ndarray:
    """timm's level for one op call: the magnitude, with Gaussian noise (slots ``slot``
    and +1, Box-Muller) or uniform in [0, magnitude] (slot + 2), clipped to
    [0, magnitude_max]."""
    m = policy.magnitude
    if policy.magnitude_noise == "gauss":
        u1, u2 = 1.0 - draws.uniform(slot), draws.uniform(slot + 1)
        z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
        level = m + policy.magnitude_std * z
    elif policy.magnitude_noise == "uniform":
        level = draws.uniform(slot + 2, 0.0, m)
    else:
        level = np.full(draws.n, m)
    return np.clip(level, 0.0, policy.magnitude_max)


class TimmRand(CompositeOp):
    """timm's RandAugment: ``num_layers`` ops chosen uniformly with replacement (by
    weight without replacement for ``tweights``), each applied with ``prob`` at a
    level drawn per call. Returned per sample and layer: ``choice``, ``level``,
    ``value`` (what the op was handed)."""

    op: Literal["timm_auto_augment"] = "timm_auto_augment"
    policy: TimmPolicy
    entries: tuple[TimmEntry, ...]

    def candidates(self) -> tuple[Op | None, ...]:
        return tuple(e.op for e in self.entries)

    @property
    def positions(self) -> int:
        return self.policy.num_layers

    def select(self, draws: Draws, canvas: Canvas) -> Selection:
        """slot 0: the coin; layer k: 1 + 8k the op, 2 + 8k to 4 + 8k the level,
        5 + 8k the sign; weighted choice: slots 1000 + j, one key per op."""
        on = self.applied(draws)
        k_ops, layers = len(self.entries), self.positions
        if self.policy.weighted:
            w = np.array([_timm.RAND_WEIGHTS[e.name] for e in self.entries])
            keys = np.stack(
                [np.log1p(-draws.uniform(1000 + j)) / w[j] for j in range(k_ops)], axis=1
            )
            picks = np.argsort(-keys, axis=1, kind="stable")[:, :layers]
        else:
            picks = np.stack(
                [np.minimum((draws.uniform(1 + 8 * k) * k_ops).astype(np.int64), k_ops - 1)
                 for k in range(layers)], axis=1,
            ) if layers else np.zeros((draws.n, 0), dtype=np.int64)  # fmt: skip
        chosen = np.where(on[:, None], picks, -1)
        levels = np.zeros((draws.n, layers))
        values = np.zeros((draws.n, layers))
        fixed: dict[tuple[int, int], dict[int, np.ndarray]] = {}
        for k in range(layers):
            level = _levels(self.policy, draws, 2 + 8 * k)
            signs = np.where(draws.uniform(5 + 8 * k) < 0.5, -1.0, 1.0)
            levels[:, k] = np.where(chosen[:, k] >= 0, level, 0.0)
            for j, entry in enumerate(self.entries):
                if entry.slot is None:
                    continue
                v = entry.values(level, signs, canvas)
                here = chosen[:, k] == j
                values[here, k] = v[here]
                fixed[(k, j)] = {entry.slot: v}
        record = {"applied": on, "choice": chosen, "level": levels, "value": values}
        return Selection(chosen=chosen, fixed=fixed, record=record)


class TimmAugMix(AugMix):
    """timm's AugMix: ``width`` chains over timm's AugMix ops (all increasing
    variants, each always applied) at a level drawn per op call; the chains are mixed
    by Dirichlet weights, truncated to uint8, then blended with the image by a
    Beta(alpha, alpha) weight (timm's ``_apply_basic``)."""

    policy: TimmPolicy
    entries: tuple[TimmEntry, ...]
    _level_name: ClassVar[str] = "level"
    _level_dtype: ClassVar[type] = np.float64

    @model_validator(mode="before")
    @classmethod
    def _from_policy(cls, data: Any) -> Any:
        if isinstance(data, dict) and "policy" in data:
            policy = data["policy"]
            return {
                **data,
                "mixture_width": policy.width,
                "chain_depth": policy.depth,
                "alpha": policy.alpha,
                "table": (),
            }
        return data

    @field_validator("table", mode="before")
    @classmethod
    def _table(cls, v: Any, info: ValidationInfo) -> tuple[Any, ...]:
        return ()

    def _steps(self) -> tuple[Any, ...]:
        return self.entries

    def _level(self, draws: Draws, slot: int) -> np.ndarray:
        return _levels(self.policy, draws, slot)

    def _chain_share(self, m: np.ndarray) -> np.ndarray:
        return np.ones_like(m[:, 1:2])

    def _mix(self, q, chains, sel: Params):
        mixed = sum(chain * _column(sel["weights"][:, c], q) for c, chain in enumerate(chains))
        mixed = mixed.clamp_(0, 255).floor_()
        blended = q + (mixed - q) * _column(sel["beta"], q)
        return blended.round_().clamp_(0, 255)
