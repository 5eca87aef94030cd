"""What an op is: a validated parameter model that also draws and applies itself.

An op is one pydantic model (its schema: fields, defaults, shorthands) that knows how
to draw its per-sample parameters (:meth:`Op.sample`) and how those act, in one of
three ways the engine can fuse:

- :class:`GeometricOp` gives each sample a forward 3x3 matrix; a run of them composes
  into one matrix and one warp.
- :class:`ColourOp` composes into each sample's colour map ``y = A x + B m``; a run of
  them touches the pixels once.
- :class:`PixelOp` runs its own kernel on float pixels (blur, erasing, normalisation).

What else an op does that others must know is declared on its class too, never
inferred from its name: :class:`Occluder` (it covers rectangles, which targets may
count as occlusion), ``changes_size`` and ``terminal``.

``sample`` receives the op's counter-based draws and the per-sample canvas (the
(height, width) this op sees, since earlier crops and resizes change it) and returns
named float64/bool arrays, one row per sample. Slot 0 of every op is its
apply-or-skip coin; the other slots are part of the reproducibility contract
(renumbering them changes samples), so each op documents its slots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from augsvc.ops.fields import Probability

if TYPE_CHECKING:  # annotations only: the engine's package imports the ops
    import torch

    from augsvc.maths.colour import ColourMap
    from augsvc.maths.rng import Draws

Params = dict[str, np.ndarray]
Canvas = tuple[np.ndarray, np.ndarray]  # (heights, widths), float64, one per sample
Size = tuple[int, int]
OpKind = Literal[
    "geometric", "colour", "filter", "tone", "erase", "normalize", "combinator", "policy"
]


class Op(BaseModel):
    """Base of every op: a name tag (the ``op`` field of each subclass) and a probability."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: ClassVar[OpKind]
    #: Ops that change the canvas size cannot be skipped per sample (the batch would
    #: no longer share one output size), so their p must be 1.
    changes_size: ClassVar[bool] = False
    #: An op that must end the recipe (normalisation: its float output is final).
    terminal: ClassVar[bool] = False
    #: The parameters a policy's catalogue entry shows its expansion for (beside
    #: the defaults); a policy without defaults for every field needs one.
    example: ClassVar[dict[str, Any]] = {}
    #: Float32 copies of a sample (per output pixel and channel) the op holds at once
    #: while it runs: what the job's memory estimate counts for it
    #: (:mod:`augsvc.pipeline.cost`, which says how the figures were measured).
    working_copies: ClassVar[int] = 3
    p: Probability = 1.0

    def peak_copies(self) -> int:
        """The most float copies this op holds at once (a combinator: any member's)."""
        return self.working_copies

    @classmethod
    def name(cls) -> str:
        """The op's tag, as written in recipes (``"rotate"``)."""
        return cls.model_fields["op"].default

    @model_validator(mode="after")
    def _size_changers_always_apply(self) -> Op:
        if self.changes_size and self.p != 1.0:
            raise ValueError(
                "p must be 1 for ops that change the image size (a skipped sample would "
                "not match the batch's output size)"
            )
        return self

    def expand(self) -> Op:
        """The op the plan runs for this one: itself, or for a shorthand (a policy
        string) the op it stands for."""
        return self

    def applied(self, draws: Draws) -> np.ndarray:
        """Slot 0: which samples this op acts on (of those a combinator chose it for)."""
        coin = draws.bernoulli(0, self.p)
        return coin if draws.gate is None else coin & draws.gate

    def sample(self, draws: Draws, canvas: Canvas) -> Params:
        """Per-sample parameters; by default only the apply-or-skip coin."""
        return {"applied": self.applied(draws)}


def gated(values: np.ndarray, applied: np.ndarray, identity: float) -> np.ndarray:
    """``values`` where the op applies, the value that means "do nothing" elsewhere."""
    return np.where(applied, values, identity)


class GeometricOp(Op):
    kind: ClassVar[OpKind] = "geometric"
    working_copies: ClassVar[int] = 2  # the warp's float output and its uint8 conversion

    def matrix(self, params: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
        """Each sample's forward matrix (source pixel -> output pixel, (N, 3, 3) float64)
        and the canvas it leaves."""
        raise NotImplementedError

    def fixed_size(self, size: Size | None) -> Size | None:
        """The (H, W) every sample has after this op, given the one before it (None:
        it follows the input). Ops that keep the canvas return ``size``."""
        return size


class ColourOp(Op):
    kind: ClassVar[OpKind] = "colour"

    def colour(self, params: Params, cmap: ColourMap) -> None:
        """Compose this op's per-sample colour maths into ``cmap``."""
        raise NotImplementedError


class PixelOp(Op):
    """An op that touches pixels on its own; ``kind`` says which (filter, erase, ...)."""

    working_copies: ClassVar[int] = 8  # a kernel's input, output and temporaries

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """Float images (N, C, H, W) in [0, 255] of the samples ``params`` describe
        (one row per image) -> the same after this op."""
        raise NotImplementedError


class Occluder:
    """Mixed into an op that covers rectangles of the image with something else
    (erasing, cutout): the object under a rectangle is hidden there, so the recipe's
    targets can stop counting it as visible (``erasing_counts_occlusion``). Targets and
    the recipe's ordering rule find occluders by this declaration, wherever they sit
    (inside combinators too), so a new occluding op is one module."""

    def occluded_rectangles(self, params: Params) -> list[np.ndarray]:
        """Per sample, the (R, 4) xyxy rectangles this op filled, in continuous pixels of
        the canvas it ran on (R = 0 where it did not act), from the params its
        ``sample`` drew: the same values its pixels were filled from."""
        raise NotImplementedError
