"""recipe -> plan -> sampled parameters.

A plan groups the recipe's ops into stages that each touch the pixels once: a run of
consecutive geometric ops becomes one matrix per sample and one warp; a run of colour
ops becomes one colour map per sample; blur, erasing and normalisation stand alone.
``sample_plan`` then draws every parameter for a batch on the CPU in float64 and
composes the matrices, so the device only ever executes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from augsvc.engine import colour, geometry
from augsvc.engine.rng import Draws, sample_states, stream_base
from augsvc.engine.sampling import Canvas, Params, sample_op
from augsvc.recipes import Recipe, digest
from augsvc.recipes import ops as o

StageKind = Literal["geometric", "colour", "filter", "erase", "normalize"]
OUTPUT_RESIZE = "output"  # the record key of the resize that output.size adds


@dataclass(frozen=True)
class Stage:
    kind: StageKind
    ops: tuple[tuple[int | str, o.Op], ...]  # (recipe op index, op)


@dataclass(frozen=True)
class Plan:
    recipe: Recipe
    digest: str
    stages: tuple[Stage, ...]

    @property
    def out_dtype(self) -> str:
        return self.recipe.out_dtype


def compile_plan(recipe: Recipe) -> Plan:
    """Group ops into stages. ``output.size`` adds a resize right after the last
    geometric op (so it joins that warp), or first when there is none."""
    indexed: list[tuple[int | str, o.Op]] = list(enumerate(recipe.ops))
    if recipe.output.size is not None:
        last_geo = max((i for i, op in enumerate(recipe.ops) if op.kind == "geometric"), default=-1)
        indexed.insert(last_geo + 1, (OUTPUT_RESIZE, o.Resize(size=recipe.output.size)))
    stages: list[Stage] = []
    for index, op in indexed:
        fusable = op.kind in ("geometric", "colour")
        if fusable and stages and stages[-1].kind == op.kind:
            stages[-1] = Stage(op.kind, (*stages[-1].ops, (index, op)))
        else:
            stages.append(Stage(op.kind, ((index, op),)))
    return Plan(recipe=recipe, digest=digest(recipe), stages=tuple(stages))


def fixed_output_size(plan: Plan) -> tuple[int, int] | None:
    """The (H, W) every sample ends at whatever its input size, or None when the output
    size follows the input (streams and tensor responses need one size)."""
    size: tuple[int, int] | None = None
    for stage in plan.stages:
        for _, op in stage.ops:
            match op:
                case o.RandomResizedCrop() | o.Crop():
                    size = op.size
                case o.Resize():
                    size = op.size if isinstance(op.size, tuple) else None
                case o.Pad():
                    left, top, right, bottom = op.padding
                    size = (
                        None if size is None else (size[0] + top + bottom, size[1] + left + right)
                    )
    return size


# --- sampled parameters -------------------------------------------------------------


@dataclass
class WarpParams:
    matrix: np.ndarray  # (N,3,3) forward, source pixels -> output pixels
    out_hw: np.ndarray  # (N,2) int64


@dataclass
class ColourParams:
    a: np.ndarray  # (N,3,3)
    b: np.ndarray | None  # (N,3,3), None when no op needs the image mean


@dataclass
class BlurParams:
    applied: np.ndarray
    sigma: np.ndarray
    kernel_size: tuple[int, int]


@dataclass
class EraseParams:
    applied: np.ndarray
    boxes: np.ndarray  # (N,4) top, left, height, width
    value: tuple[int, ...]


@dataclass
class NormalizeParams:
    mean: tuple[float, ...]
    std: tuple[float, ...]


StageParams = WarpParams | ColourParams | BlurParams | EraseParams | NormalizeParams


@dataclass
class Sampled:
    """Everything a batch will have applied to it, per stage and as a flat record."""

    keys: np.ndarray
    stages: list[StageParams]
    out_hw: np.ndarray  # (N,2)
    record: dict[str, np.ndarray] = field(default_factory=dict)

    def take(self, rows: np.ndarray) -> Sampled:
        """The parameters of a subset of samples (used per input-size group)."""
        return Sampled(
            keys=self.keys[rows],
            stages=[_take(s, rows) for s in self.stages],
            out_hw=self.out_hw[rows],
        )


def _take(s: StageParams, rows: np.ndarray) -> StageParams:
    if isinstance(s, WarpParams):
        return WarpParams(s.matrix[rows], s.out_hw[rows])
    if isinstance(s, ColourParams):
        return ColourParams(s.a[rows], None if s.b is None else s.b[rows])
    if isinstance(s, BlurParams):
        return BlurParams(s.applied[rows], s.sigma[rows], s.kernel_size)
    if isinstance(s, EraseParams):
        return EraseParams(s.applied[rows], s.boxes[rows], s.value)
    return s


def _geometric_step(op: o.Op, p: Params, canvas: Canvas) -> tuple[np.ndarray, Canvas]:
    """One geometric op's forward matrix and the canvas it leaves."""
    h, w = canvas
    n = len(h)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    match op:
        case o.Rotate():
            return geometry.rotation(p["angle"], cx, cy), canvas
        case o.Affine():
            m = geometry.affine(
                p["angle"], p["tx"], p["ty"], p["scale"], p["shear_x"], p["shear_y"], cx, cy
            )
            return m, canvas
        case o.RandomResizedCrop():
            oh, ow = (np.full(n, float(s)) for s in op.size)
            m = geometry.crop_resize(p["top"], p["left"], p["height"], p["width"], oh, ow)
            return m, (oh, ow)
        case o.Crop():
            oh, ow = (np.full(n, float(s)) for s in op.size)
            return geometry.translation(-p["left"], -p["top"]), (oh, ow)
        case o.Resize():
            if isinstance(op.size, int):  # shorter side, as torchvision (long side floored)
                s = float(op.size)
                oh = np.where(h <= w, s, np.floor(s * h / w))
                ow = np.where(h <= w, np.floor(s * w / h), s)
            else:
                oh, ow = (np.full(n, float(v)) for v in op.size)
            z = np.zeros(n)
            return geometry.crop_resize(z, z, h, w, oh, ow), (oh, ow)
        case o.Pad():
            left, top, right, bottom = op.padding
            m = geometry.translation(np.full(n, float(left)), np.full(n, float(top)))
            return m, (h + top + bottom, w + left + right)
        case o.HFlip():
            return geometry.hflip(w, p["applied"]), canvas
        case o.VFlip():
            return geometry.vflip(h, p["applied"]), canvas
        case o.Perspective():
            m = geometry.eye(n)
            solvable = (h >= 2) & (w >= 2)  # a line's corners coincide: no homography
            start = geometry.corners(h[solvable], w[solvable])
            m[solvable] = geometry.homography(start, start + p["shift"][solvable])
            return m, canvas
    raise TypeError(f"not a geometric op: {op!r}")


def _colour_step(op: o.Op, p: Params, cmap: colour.ColourMap) -> None:
    match op:
        case o.ColorJitter():
            cmap.linear(colour.brightness(p["brightness"]))
            cmap.contrast(p["contrast"])
            cmap.linear(colour.saturation(p["saturation"]))
            cmap.linear(colour.hue(p["hue"]))
        case o.Grayscale():
            cmap.linear(colour.grayscale(p["applied"]))
        case _:
            raise TypeError(f"not a colour op: {op!r}")


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
    stages: list[StageParams] = []
    for stage in plan.stages:
        drawn: list[tuple[o.Op, Params]] = []
        matrix = geometry.eye(n)
        for index, op in stage.ops:
            p = sample_op(op, Draws(states, index if isinstance(index, int) else -1), canvas)
            for name, value in p.items():
                record[f"ops.{index}.{name}"] = value
            if stage.kind == "geometric":
                step, canvas = _geometric_step(op, p, canvas)
                matrix = step @ matrix
            drawn.append((op, p))
        if stage.kind == "geometric":
            stages.append(WarpParams(matrix=matrix, out_hw=_hw(canvas)))
            total = matrix @ total
        else:
            stages.append(_stage_params(stage.kind, drawn, n))
    record["matrix"] = total
    return Sampled(keys=keys, stages=stages, out_hw=_hw(canvas), record=record)


def _hw(canvas: Canvas) -> np.ndarray:
    return np.stack(canvas, 1).astype(np.int64)


def _stage_params(kind: StageKind, params: list[tuple[o.Op, Params]], n: int) -> StageParams:
    """Parameters of a non-geometric stage from its ops' draws."""
    if kind == "colour":
        cmap = colour.ColourMap(n)
        for op, p in params:
            _colour_step(op, p, cmap)
        return ColourParams(a=cmap.a, b=cmap.b if cmap.uses_mean else None)
    ((op, p),) = params
    if isinstance(op, o.GaussianBlur):
        return BlurParams(p["applied"], p["sigma"], op.kernel_size)
    if isinstance(op, o.RandomErasing):
        boxes = np.stack([p["top"], p["left"], p["height"], p["width"]], 1)
        return EraseParams(p["applied"], boxes, op.value)
    if isinstance(op, o.Normalize):
        return NormalizeParams(op.mean, op.std)
    raise TypeError(f"unexpected stage {kind}")
