"""auto_augment: torchvision's AutoAugment, drawn per sample from the key."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import ValidationInfo, field_validator, model_validator

from augsvc.maths.rng import Draws
from augsvc.ops._auto_augment_policies import SUB_POLICIES
from augsvc.ops._composite import Selection
from augsvc.ops._policy import Entry, Policy, derived, space
from augsvc.ops.base import Canvas, Op, OpKind
from augsvc.ops.registry import register

Step = tuple[str, float, int | None]
MAGNITUDE_BINS = 10


@register
class AutoAugment(Policy):
    """torchvision's AutoAugment: one of the ``policy``'s 25 learned sub-policies
    (imagenet, cifar10 or svhn) chosen uniformly, then its two ops in order, each with
    its own probability and magnitude bin (of 10), signed ops negated half the time.
    ``table`` (the ops and their magnitudes) and ``sub_policies`` are torchvision's,
    filled in so the digest pins them. Returned per sample: ``choice`` (N, 2), the
    sub-policy, and ``value`` (N, 2), what each of its ops was handed."""

    kind: ClassVar[OpKind] = "policy"
    op: Literal["auto_augment"] = "auto_augment"
    policy: Literal["imagenet", "cifar10", "svhn"] = "imagenet"
    table: tuple[Entry, ...] | None = None
    sub_policies: tuple[tuple[Step, Step], ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _derived_last(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {"table": None, "sub_policies": None, **data}
        return data

    @field_validator("table", mode="before")
    @classmethod
    def _table(cls, v: Any, info: ValidationInfo) -> tuple[Entry, ...]:
        return derived(v, space("auto_augment", MAGNITUDE_BINS), info)

    @field_validator("sub_policies", mode="before")
    @classmethod
    def _subs(cls, v: Any, info: ValidationInfo) -> tuple[tuple[Step, Step], ...]:
        expected = SUB_POLICIES[info.data.get("policy", "imagenet")]
        if v is not None and _as_tuples(v) != expected:
            raise ValueError(
                "sub_policies is derived from policy; leave it out (a recipe's canonical "
                "form carries it so the digest pins it)"
            )
        return expected

    def table_entries(self) -> tuple[Entry, ...]:
        assert self.table is not None
        return self.table

    def _entry(self, name: str) -> tuple[int, Entry]:
        for j, e in enumerate(self.table_entries()):
            if e.name == name:
                return j, e
        raise KeyError(name)

    @property
    def positions(self) -> int:
        return 2

    def members(self) -> list[tuple[int, int, Op]]:
        """Position k's candidate i is sub-policy i's k-th op, with its probability."""
        assert self.sub_policies is not None
        out = []
        for k in range(2):
            for i, steps in enumerate(self.sub_policies):
                name, prob, _ = steps[k]
                op = self._entry(name)[1].op
                assert op is not None
                out.append((k, i, op.model_copy(update={"p": prob})))
        return out

    def bins(self, draws: Draws, position: int) -> np.ndarray:
        raise NotImplementedError  # each sub-policy step fixes its bin

    def select(self, draws: Draws, canvas: Canvas) -> Selection:
        """slot 0: the policy's coin; slot 1: the sub-policy; slots 3 and 6: the signs
        of its two ops (each op's own coin is its slot 0)."""
        assert self.sub_policies is not None
        on = self.applied(draws)
        n_subs = len(self.sub_policies)
        pick = np.minimum((draws.uniform(1) * n_subs).astype(np.int64), n_subs - 1)
        pick = np.where(on, pick, -1)
        chosen = np.stack([pick, pick], axis=1)
        values = np.zeros((draws.n, 2))
        bins = np.full((draws.n, 2), -1, dtype=np.int64)
        fixed: dict[tuple[int, int], dict[int, np.ndarray]] = {}
        for k in range(2):
            signs = np.where(draws.uniform(3 + 3 * k) < 0.5, -1.0, 1.0)
            for i, steps in enumerate(self.sub_policies):
                name, _, b = steps[k]
                entry = self._entry(name)[1]
                if b is None or not entry.magnitudes:
                    continue
                v = entry.values(np.full(draws.n, b), signs, canvas)
                here = pick == i
                values[here, k] = v[here]
                bins[here, k] = b
                assert entry.slot is not None
                fixed[(k, i)] = {entry.slot: v}
        record = {"applied": on, "choice": chosen, "bin": bins, "value": values}
        return Selection(chosen=chosen, fixed=fixed, record=record)


def _as_tuples(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return tuple(_as_tuples(x) for x in v)
    return v
