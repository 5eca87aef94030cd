"""augmix: torchvision's AugMix, drawn per sample from the key."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, ValidationInfo, field_validator

from augsvc.maths import geometry, kernels
from augsvc.maths.colour import ColourMap, apply_colour
from augsvc.maths.dirichlet import SLOTS_PER_VARIATE, dirichlet
from augsvc.maths.rng import Draws
from augsvc.ops._policy import Entry, derived, space
from augsvc.ops._slots import SlotLayout
from augsvc.ops.base import Canvas, ColourOp, GeometricOp, OpKind, Params, PixelOp
from augsvc.ops.registry import register

MAGNITUDE_BINS = 10  # torchvision's _PARAMETER_MAX
_PARTIAL = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Posterize", "Solarize",
            "AutoContrast", "Equalize")  # fmt: skip


@register
class AugMix(PixelOp):
    """torchvision's AugMix: ``mixture_width`` chains of ``chain_depth`` ops (-1: 1 to 3
    per chain, drawn), each op chosen uniformly from the table at a magnitude bin drawn
    below ``severity`` (of 10), applied to the image; the chains are mixed with
    Dirichlet(``alpha``) weights and the mix blended with the image by a
    Beta(``alpha``, ``alpha``) weight, truncated to uint8 as torchvision does.
    ``all_ops`` false leaves out the colour ops (brightness, color, contrast,
    sharpness). Returned per sample: ``beta`` (the augmented share), ``weights``
    (N, width, each chain's share of the whole), ``depth`` (N, width), and ``choice``,
    ``bin``, ``value`` (N, width, depth; -1 / 0 past a chain's depth). Within a chain
    the geometric ops compose into one warp (bilinear, as torchvision's default, or
    ``interpolation``), ahead of its other ops. ``table`` is torchvision's op table."""

    kind: ClassVar[OpKind] = "policy"
    working_copies: ClassVar[int] = 16  # the chains, their mix and the blend with the input
    op: Literal["augmix"] = "augmix"
    severity: int = Field(default=3, ge=1, le=MAGNITUDE_BINS)
    mixture_width: int = Field(default=3, ge=1, le=16)
    chain_depth: int = Field(default=-1, ge=-1, le=10)
    alpha: float = Field(default=1.0, gt=0.0, le=100.0)
    all_ops: bool = True
    interpolation: Literal["bilinear", "nearest"] = "bilinear"
    table: tuple[Entry, ...] | None = Field(default=None, validate_default=True)

    @field_validator("chain_depth")
    @classmethod
    def _depth(cls, v: int) -> int:
        if v == 0:
            raise ValueError("chain_depth must be -1 (1 to 3, drawn) or 1..10")
        return v

    @field_validator("table", mode="before")
    @classmethod
    def _table(cls, v: Any, info: ValidationInfo) -> tuple[Entry, ...]:
        full = space("augmix", MAGNITUDE_BINS)
        if not info.data.get("all_ops", True):
            full = tuple(e for e in full if e.name in _PARTIAL)
        return derived(v, full, info)

    def _steps(self) -> tuple[Any, ...]:
        """The table the chains draw their ops from."""
        return self.table or ()

    @property
    def _max_depth(self) -> int:
        return self.chain_depth if self.chain_depth > 0 else 3

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """slot 0: the coin; from slot 1: the Beta weight's two Gamma variates; from
        slot 100: the chains' Dirichlet weights; chain c's draws at 1000 + 128c: its
        depth at +127, step d's op at +8d, its magnitude from +8d+1 (up to three
        slots), its sign at +8d+4."""
        on = self.applied(draws)
        n, width, depth_max = draws.n, self.mixture_width, self._max_depth
        table = self._steps()
        slots = _slots(width, depth_max)
        m = dirichlet(draws, slots.beta.start, self.alpha, 2)
        weights = dirichlet(draws, slots.weights.start, self.alpha, width)
        depth = np.zeros((n, width), dtype=np.int64)
        choice = np.full((n, width, depth_max), -1, dtype=np.int64)
        bins = np.full((n, width, depth_max), -1, dtype=self._level_dtype)
        values = np.zeros((n, width, depth_max))
        for c in range(width):
            if self.chain_depth > 0:
                depth[:, c] = self.chain_depth
            else:
                u = draws.uniform(slots.depth[c][0])
                depth[:, c] = 1 + np.minimum((u * 3).astype(np.int64), 2)
            for d, step in enumerate(slots.steps[c]):
                live = on & (d < depth[:, c])
                pick = np.minimum((draws.uniform(step[0]) * len(table)).astype(np.int64),
                                  len(table) - 1)  # fmt: skip
                signs = np.where(draws.uniform(step[4]) < 0.5, -1.0, 1.0)
                choice[:, c, d] = np.where(live, pick, -1)
                levels = self._level(draws, step[1])
                for j, entry in enumerate(table):
                    here = live & (pick == j)
                    if entry.slot is not None and here.any():
                        bins[here, c, d] = levels[here]
                        values[here, c, d] = entry.values(levels, signs, canvas)[here]
        return {
            "applied": on,
            "beta": np.where(on, m[:, 1], 0.0),
            "weights": np.where(on[:, None], weights * self._chain_share(m), 0.0),
            "depth": np.where(on[:, None], depth, 0),
            "choice": choice,
            self._level_name: bins,
            "value": values,
        }

    _level_name: ClassVar[str] = "bin"
    _level_dtype: ClassVar[type] = np.int64

    def _level(self, draws: Draws, slot: int) -> np.ndarray:
        """Each step's magnitude bin: uniform below ``severity``."""
        u = draws.uniform(slot)
        return np.minimum((u * self.severity).astype(np.int64), self.severity - 1)

    def _chain_share(self, m: np.ndarray) -> np.ndarray:
        """What the chain weights are scaled by: torchvision's are shares of the whole."""
        return m[:, 1:2]

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        rows = np.flatnonzero(params["applied"])
        if len(rows) == 0:
            return x
        sel = {k: v[rows] for k, v in params.items()}
        idx = torch.as_tensor(rows, device=x.device)
        q = x[idx].round().clamp_(0, 255)
        n, _, h, w = q.shape
        canvas = (np.full(n, float(h)), np.full(n, float(w)))
        chains = [
            self._chain(q, sel["choice"][:, c], sel["value"][:, c], canvas)
            for c in range(self.mixture_width)
        ]
        out = x.clone()
        out[idx] = self._mix(q, chains, sel)
        return out

    def _mix(self, q: torch.Tensor, chains: list[torch.Tensor], sel: Params) -> torch.Tensor:
        """torchvision's: (1 - beta) x + sum of weight * chain, truncated."""
        mix = q * _column(1.0 - sel["beta"], q)
        for c, chain in enumerate(chains):
            mix = mix.add_(chain * _column(sel["weights"][:, c], q))
        return mix.clamp_(0, 255).floor_()

    def _chain(
        self, q: torch.Tensor, choice: np.ndarray, values: np.ndarray, canvas: Canvas
    ) -> torch.Tensor:
        """One chain on every sample: its geometric steps as one warp, then the rest in
        order, each rounded onto the uint8 grid as torchvision's uint8 ops leave it."""
        table = self._steps()
        n = q.shape[0]
        matrix = geometry.eye(n)
        for d in range(choice.shape[1]):
            for j, entry in enumerate(table):
                if isinstance(entry.op, GeometricOp) and (choice[:, d] == j).any():
                    step, _ = entry.op.matrix(
                        _params(entry, choice[:, d] == j, values[:, d], canvas), canvas
                    )
                    matrix = step @ matrix
        img = q.clone()  # the tone kernels write in place; q is every chain's start
        if not np.allclose(matrix, np.eye(3)):
            img = kernels.warp(
                q, matrix, tuple(q.shape[-2:]), mode=self.interpolation,
                padding_mode="constant", fill=(0,), antialias=False,
            ).round_().clamp_(0, 255)  # fmt: skip
        for d in range(choice.shape[1]):
            for j, entry in enumerate(table):
                mask = choice[:, d] == j
                if entry.op is None or isinstance(entry.op, GeometricOp) or not mask.any():
                    continue
                p = _params(entry, mask, values[:, d], canvas)
                if isinstance(entry.op, ColourOp):
                    cmap = ColourMap(n)
                    entry.op.colour(p, cmap)
                    a = torch.as_tensor(cmap.a, dtype=img.dtype, device=img.device)
                    b = torch.as_tensor(cmap.b, dtype=img.dtype, device=img.device)
                    img = apply_colour(img, a, b if cmap.uses_mean else None, 255.0).round_()
                elif isinstance(entry.op, PixelOp):
                    img = entry.op.apply(img, p)
        return img


def _params(entry: Entry, mask: np.ndarray, values: np.ndarray, canvas: Canvas) -> Params:
    """The member op's parameters for the samples in ``mask`` with the given values: a
    table's ops have fixed parameters besides the magnitude slot, so any draws give
    them."""
    assert entry.op is not None
    fixed = {entry.slot: values} if entry.slot is not None else None
    draws = Draws(np.zeros(len(mask), dtype=np.uint64), 0, gate=mask, fixed=fixed)
    return entry.op.sample(draws, canvas)


@dataclass(frozen=True)
class _Slots:
    beta: range
    weights: range
    depth: list[range]  # per chain
    steps: list[list[range]]  # per chain and step: op, magnitude (three), sign


@lru_cache(maxsize=256)
def _slots(width: int, depth: int) -> _Slots:
    """The sample's draw slots, laid out by :class:`SlotLayout` (which refuses any
    overlap): the coin, the Beta weight's two Gamma variates, the chains' Dirichlet
    weights, then 128 slots per chain."""
    layout = SlotLayout()
    layout.take("coin", 0, 1)
    beta = layout.take("beta", 1, 2 * SLOTS_PER_VARIATE)
    weights = layout.take("weights", 100, width * SLOTS_PER_VARIATE)
    chains = [1000 + 128 * c for c in range(width)]
    return _Slots(
        beta=beta,
        weights=weights,
        depth=[layout.take(f"chain {c} depth", base + 127, 1) for c, base in enumerate(chains)],
        steps=[
            layout.repeated(f"chain {c} step", base, 8, depth, 5) for c, base in enumerate(chains)
        ],
    )


def _column(v: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(v, dtype=like.dtype, device=like.device).view(-1, 1, 1, 1)
