"""recipe -> plan -> sampled parameters.

A plan groups the recipe's ops into stages that each touch the pixels once: a run of
consecutive geometric ops becomes one matrix per sample and one warp; a run of colour
ops becomes one colour map per sample; every other op is a pixel stage of its own.
``sample_plan`` then draws every parameter for a batch on the CPU in float64 and
composes the matrices, so the device only ever executes.

A combinator or policy (``engine.selection``) is laid out as its member ops: the
geometric ones join the warp before it (so a sample's whole geometry is still one
resampling), then each position's colour members make one colour map and each pixel
member a stage that acts on the samples that chose it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from augsvc.engine import selection
from augsvc.maths import geometry
from augsvc.maths.colour import ColourMap
from augsvc.maths.rng import Draws, sample_states, stream_base
from augsvc.ops import Canvas, ColourOp, GeometricOp, Op, Params, op_class
from augsvc.recipes import Recipe, digest

StageKind = Literal["warp", "colour", "pixel"]
OUTPUT_RESIZE = "output"  # the record key of the resize that output.size adds


@dataclass(frozen=True)
class Stage:
    kind: StageKind
    ops: tuple[tuple[int | str, Op], ...]  # (recipe op index, op)


@dataclass(frozen=True)
class Plan:
    recipe: Recipe
    digest: str
    stages: tuple[Stage, ...]
    #: The members of combinators and policies, by the key their stages name them with.
    members: dict[str, selection.Member] = field(default_factory=dict, compare=False, hash=False)
    #: The recipe's ops as they run: a shorthand (a timm policy string) expanded.
    ops: tuple[Op, ...] = field(default=(), compare=False, hash=False)

    @property
    def out_dtype(self) -> str:
        return self.recipe.out_dtype


def _stage_kind(op: Op) -> StageKind:
    if isinstance(op, GeometricOp):
        return "warp"
    return "colour" if isinstance(op, ColourOp) else "pixel"


def expanded(recipe: Recipe) -> tuple[Op, ...]:
    """The recipe's ops as the plan runs them (shorthands replaced by what they mean)."""
    return tuple(op.expand() for op in recipe.ops)


def compile_plan(recipe: Recipe) -> Plan:
    """Group ops into stages. ``output.size`` adds a resize right after the last
    geometric op (so it joins that warp), or first when there is none."""
    ops = expanded(recipe)
    indexed: list[tuple[int | str, Op]] = list(enumerate(ops))
    if recipe.output.size is not None:
        last_geo = max(
            (i for i, op in enumerate(recipe.ops) if isinstance(op, GeometricOp)), default=-1
        )
        indexed.insert(last_geo + 1, (OUTPUT_RESIZE, op_class("resize")(size=recipe.output.size)))
    stages: list[Stage] = []
    members: dict[str, selection.Member] = {}
    for index, op in indexed:
        if isinstance(index, int) and selection.is_composite(op):
            for kind, entries in selection.layout(index, op, members):
                _add(stages, kind, entries, merge=kind == "warp")
            continue
        kind = _stage_kind(op)
        _add(stages, kind, ((index, op),), merge=kind != "pixel")
    return Plan(
        recipe=recipe, digest=digest(recipe), stages=tuple(stages), members=members, ops=ops
    )


def _add(
    stages: list[Stage], kind: StageKind, entries: tuple[tuple[int | str, Op], ...], merge: bool
) -> None:
    if merge and stages and stages[-1].kind == kind:
        stages[-1] = Stage(kind, (*stages[-1].ops, *entries))
    else:
        stages.append(Stage(kind, entries))


def fixed_output_size(plan: Plan) -> tuple[int, int] | None:
    """The (H, W) every sample ends at whatever its input size, or None when the output
    size follows the input (streams and tensor responses need one size)."""
    size: tuple[int, int] | None = None
    for stage in plan.stages:
        for _, op in stage.ops:
            if isinstance(op, GeometricOp):
                size = op.fixed_size(size)
    return size


@dataclass
class Sampled:
    """Everything a batch will have applied to it, and the same as a flat record.

    ``stages`` holds one dict of per-sample arrays (one row per sample) for each stage
    of the plan: a warp's ``matrix`` (N,3,3) and ``out_hw`` (N,2); a colour map's ``a``
    (N,3,3) and, when an op needs the image mean, ``b``; a pixel op's own draws.
    """

    keys: np.ndarray
    stages: list[Params]
    out_hw: np.ndarray  # (N,2)
    record: dict[str, np.ndarray] = field(default_factory=dict)

    def take(self, rows: np.ndarray) -> Sampled:
        """The parameters of a subset of samples (a size group, a chunk)."""
        return Sampled(
            keys=self.keys[rows],
            stages=[{name: values[rows] for name, values in s.items()} for s in self.stages],
            out_hw=self.out_hw[rows],
        )


def sample_plan(plan: Plan, seed: int, keys: np.ndarray, in_hw: np.ndarray) -> Sampled:
    """Draw and compose every parameter of a batch.

    ``keys`` are the samples' keys (int64 >= 0) and ``in_hw`` their input (H, W).
    The result depends on nothing else: not the batch composition, not the device.
    """
    keys = np.asarray(keys, dtype=np.int64)
    states = sample_states(stream_base(plan.digest, seed), keys)
    n = len(keys)
    canvas: Canvas = (in_hw[:, 0].astype(np.float64), in_hw[:, 1].astype(np.float64))
    total = geometry.eye(n)
    record: dict[str, np.ndarray] = {}
    stages: list[Params] = []
    chooser = selection.Chooser(plan.ops, plan.members, states, record)
    for stage in plan.stages:
        matrix = geometry.eye(n)
        cmap = ColourMap(n)
        params: Params = {}
        for index, op in stage.ops:
            if isinstance(index, str) and index in plan.members:
                draws = chooser.draws(index, canvas)
            else:
                draws = Draws(states, index if isinstance(index, int) else -1)
            params = op.sample(draws, canvas)
            for name, value in params.items():
                record[f"ops.{index}.{name}"] = value
            if isinstance(op, GeometricOp):
                step, canvas = op.matrix(params, canvas)
                matrix = step @ matrix
            elif isinstance(op, ColourOp):
                op.colour(params, cmap)
        if stage.kind == "warp":
            stages.append({"matrix": matrix, "out_hw": _hw(canvas)})
            total = matrix @ total
        elif stage.kind == "colour":
            stages.append({"a": cmap.a, "b": cmap.b} if cmap.uses_mean else {"a": cmap.a})
        else:
            stages.append(params)
    record["matrix"] = total
    return Sampled(keys=keys, stages=stages, out_hw=_hw(canvas), record=record)


def _hw(canvas: Canvas) -> np.ndarray:
    return np.stack(canvas, 1).astype(np.int64)
