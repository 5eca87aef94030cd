"""The engine's entry point: a plan and a batch of uint8 images in, augmented batch out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from augsvc.engine import region
from augsvc.engine.first_warp import FirstWarp
from augsvc.engine.inputs import Images, Inputs
from augsvc.engine.plan import Plan, Sampled, sample_plan
from augsvc.errors import PayloadTooLarge, ValidationFailed
from augsvc.maths import kernels
from augsvc.maths.colour import apply_colour
from augsvc.maths.device import ExecutionPolicy, execution
from augsvc.maths.rng import MAX_SEED
from augsvc.maths.transfer import upload_params


@dataclass
class AugmentResult:
    """``images`` is one (N,C,H,W) tensor when every sample ends at the same shape
    (the usual case: the recipe crops or resizes, and the inputs share a channel count
    or ``output.channels`` is set), else a list of (C,H,W) tensors.
    ``params`` holds, per sample, the composed forward matrix (``matrix``, source
    pixel -> output pixel) and every op's drawn values (``ops.<i>.<name>``)."""

    images: torch.Tensor | list[torch.Tensor]
    keys: np.ndarray
    params: dict[str, np.ndarray]


def resolve_device(spec: str = "auto") -> torch.device:
    """auto -> CUDA when present, else CPU; cpu; cuda; cuda:N."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but CUDA is not available")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {spec!r}: use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        check_device_index(spec, device, torch.cuda.device_count())
    return device


def check_device_index(spec: str, device: torch.device, count: int) -> None:
    """Refuse ``cuda:N`` beyond the devices present where the device is resolved (at
    start-up), not at the first request's first kernel."""
    if device.index is not None and device.index >= count:
        present = f"cuda:0..cuda:{count - 1}" if count > 1 else "only cuda:0"
        raise ValueError(
            f"device {spec!r} requested but this machine has {count} CUDA device(s): {present}"
        )


def starts_with_warp(plan: Plan) -> bool:
    """Whether the plan's first stage is a warp, whose source region and decode scale
    can be planned from the image header alone."""
    return bool(plan.stages) and plan.stages[0].kind == "warp"


def decode_scales(
    plan: Plan,
    seed: int,
    keys: Sequence[int] | np.ndarray,
    full_hw: np.ndarray,
    choices: tuple[int, ...] = (1, 2, 4, 8),
) -> np.ndarray:
    """The scale (one of ``choices``) at which each sample's image can be decoded
    without changing what its first warp needs: the largest that divides the warp's
    antialiasing pre-shrink, so a decoder's downscaling (JPEG's DCT scaling) does part
    of that filtering (``engine.region.decode_scales``). A function of (recipe, seed,
    key, image size) alone, so every split, replica and resumed stream decodes a sample
    at the same scale. 1 when the plan does not start with a warp or antialiasing is
    off."""
    full_hw = np.asarray(full_hw, dtype=np.int64).reshape(-1, 2)
    if not starts_with_warp(plan):
        return np.ones(len(full_hw), dtype=np.int64)
    sampled = sample_plan(plan, seed, np.asarray(keys, dtype=np.int64), full_hw)
    return region.decode_scales(
        sampled.stages[0]["matrix"],
        full_hw,
        antialias=plan.recipe.output.antialias,
        choices=choices,
    )


def source_boxes(
    plan: Plan,
    seed: int,
    keys: Sequence[int] | np.ndarray,
    full_hw: np.ndarray,
    to_pixels: list[np.ndarray | None],
    pixels_hw: np.ndarray,
) -> np.ndarray:
    """(N,4) top, left, bottom, right: the box of each sample's pixels that
    :func:`augment` reads, for pixels of size ``pixels_hw`` (N,2) given with the maps
    ``to_pixels`` (:class:`~augsvc.engine.region.ScaledSource`'s). The same draws and
    region maths as the region-first path, so a decoder can produce only those pixels.
    Only for a plan that starts with a warp."""
    if not starts_with_warp(plan):
        raise ValueError("source boxes need a plan whose first stage is a warp")
    full_hw = np.asarray(full_hw, dtype=np.int64).reshape(-1, 2)
    first = sample_plan(plan, seed, np.asarray(keys, dtype=np.int64), full_hw).stages[0]
    opts = plan.recipe.output
    return region.plan_regions(
        region.source_matrices(first["matrix"], to_pixels),
        first["out_hw"],
        np.asarray(pixels_hw, dtype=np.int64).reshape(-1, 2),
        mode=opts.interpolation,
        padding_mode=opts.padding_mode,
        antialias=opts.antialias,
    ).boxes


def output_channels(plan: Plan, channels: int) -> int:
    """The channel count a sample with ``channels`` leaves with: its own under ``auto``
    (a function of the sample alone, never of its batch-mates), else the recipe's."""
    wanted = plan.recipe.output.channels
    return channels if wanted == "auto" else int(wanted)


def augment(
    plan: Plan,
    images: Images,
    *,
    seed: int,
    offset: int = 0,
    keys: Sequence[int] | np.ndarray | None = None,
    device: torch.device | str = "cpu",
    max_output_pixels: int | None = None,
    region_first: bool = True,
) -> AugmentResult:
    """Augment a batch. Sample i gets key ``offset + i`` unless ``keys`` are given;
    its output depends only on (recipe, seed, key, image), never on the batch.

    An image may be a scaled decode (:class:`~augsvc.engine.region.ScaledSource`): its
    parameters are drawn for the full image and its first warp reads the pixels given.
    ``region_first=False`` runs the whole-image path the engine had before source
    regions (each source converted and pre-shrunk whole), for comparisons."""
    inputs = Inputs.of(images)
    keys_arr = _keys(keys, offset, len(inputs))
    by_region = _path(plan, inputs, seed, region_first)
    policy = execution(resolve_device(device) if isinstance(device, str) else device)
    sampled = sample_plan(plan, seed, keys_arr, inputs.full_hw)
    out_pixels = int(np.prod(sampled.out_hw, axis=1).sum())
    if max_output_pixels is not None and out_pixels > max_output_pixels:
        raise PayloadTooLarge(
            f"the batch would produce {out_pixels} output pixels; the limit is {max_output_pixels}"
        )
    channels = [output_channels(plan, img.shape[0]) for img in inputs.pixels]
    run = _on_pixels(sampled, inputs)
    if by_region:
        first = FirstWarp(run.stages[0], inputs, channels, plan.recipe.output, policy)
        parts = policy.map(
            lambda rows: (rows, _run_chunk(plan, run.take(np.array(rows)), first(rows), start=1)),
            first.chunks(),
        )
    else:
        parts = _run_by_shape(plan, run, inputs, channels, policy)
    shapes = {(c, *hw) for c, hw in zip(channels, sampled.out_hw.tolist(), strict=True)}
    images_out = _assemble(parts, shapes, len(inputs), plan, policy.device)
    return AugmentResult(images=images_out, keys=keys_arr, params=sampled.record)


def _path(plan: Plan, inputs: Inputs, seed: int, region_first: bool) -> bool:
    """Whether the batch takes the region-first path; refuses a seed out of range and
    decodes the path cannot use."""
    if not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
        raise ValidationFailed(f"seed must be an integer in 0..{MAX_SEED}, got {seed!r}")
    by_region = region_first and starts_with_warp(plan)
    if inputs.scaled and not starts_with_warp(plan):
        raise ValidationFailed("scaled decodes need a plan whose first stage is a warp")
    if inputs.partial and not by_region:
        raise ValidationFailed(
            "region decodes need the region-first path and a plan that starts with a warp"
        )
    return by_region


def _on_pixels(sampled: Sampled, inputs: Inputs) -> Sampled:
    """The parameters as the pixels given need them: a scaled decode's first warp
    re-expressed on its pixels (the record keeps the full image's)."""
    if not inputs.scaled:
        return sampled
    run = sampled.take(np.arange(len(inputs)))
    run.stages[0]["matrix"] = region.source_matrices(sampled.stages[0]["matrix"], inputs.to_pixels)
    return run


def _keys(keys: Sequence[int] | np.ndarray | None, offset: int, n: int) -> np.ndarray:
    out = (
        np.arange(offset, offset + n, dtype=np.int64)
        if keys is None
        else np.asarray(keys, dtype=np.int64)
    )
    if len(out) != n or (out < 0).any():
        raise ValidationFailed("keys must be one non-negative integer per image")
    return out


Part = tuple[list[int], torch.Tensor]  # sample indices and their outputs, in that order


def _assemble(
    parts: list[Part], shapes: set[tuple[int, ...]], n: int, plan: Plan, device: torch.device
) -> torch.Tensor | list[torch.Tensor]:
    """The parts in sample order: one tensor when every sample has one shape, else a list."""
    if len(shapes) != 1:
        result = [torch.empty(0)] * n
        for rows, out in parts:
            for j, i in enumerate(rows):
                result[i] = out[j]
        return result
    if len(parts) == 1 and len(parts[0][0]) == n:
        return parts[0][1]
    out_dtype = torch.float32 if plan.out_dtype == "float32" else torch.uint8
    batch = torch.empty((n, *shapes.pop()), dtype=out_dtype, device=device)
    for rows, out in parts:  # whole rows copied, where indexed assignment goes element by element
        batch.index_copy_(0, torch.as_tensor(rows, device=device), out.to(batch.dtype))
    return batch


def _run_by_shape(
    plan: Plan,
    sampled: Sampled,
    inputs: Inputs,
    channels: list[int],
    policy: ExecutionPolicy,
) -> list[Part]:
    """The whole-image path: groups of one input shape (C, H, W), which also fixes the
    channels after conversion, so a group stacks and is converted in one step."""
    pixels = inputs.pixels
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(pixels):
        groups.setdefault(tuple(img.shape), []).append(i)
    parts = []
    for rows in groups.values():
        if inputs.batch is not None and len(rows) == len(pixels):
            x = inputs.batch
        else:
            x = torch.stack([pixels[i] for i in rows])
        x = kernels.convert_channels(policy.to_device(x), channels[rows[0]])
        parts.append((rows, run_stages(plan, sampled.take(np.array(rows)), x)))
    return parts


def run_stages(plan: Plan, sampled: Sampled, x: torch.Tensor) -> torch.Tensor:
    """Execute every stage on one same-size group, a chunk of samples at a time.

    Every stage is per-sample, so chunking (and running chunks in parallel) never
    changes a result.
    """
    n, _, h, w = x.shape
    step = execution(x.device).rows_per_chunk(h * w)
    if n <= step:
        return _run_chunk(plan, sampled, x)
    chunks = [
        (sampled.take(np.arange(i, min(i + step, n))), x[i : i + step]) for i in range(0, n, step)
    ]
    return torch.cat(execution(x.device).map(lambda sc: _run_chunk(plan, *sc), chunks))


def _run_chunk(plan: Plan, sampled: Sampled, x: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Stages ``start`` onwards on one chunk; the region-first path has run stage 0."""
    opts = plan.recipe.output
    for stage, params in zip(plan.stages[start:], sampled.stages[start:], strict=True):
        if stage.kind == "warp":
            oh, ow = params["out_hw"][0].tolist()
            x = kernels.warp(
                x,
                params["matrix"],
                (oh, ow),
                mode=opts.interpolation,
                padding_mode=opts.padding_mode,
                fill=opts.fill,
                antialias=opts.antialias,
            )
        elif stage.kind == "colour":
            maps = {k: params[k] for k in ("a", "b") if params.get(k) is not None}
            uploaded = upload_params(maps, x.device)  # one copy on a device
            x = apply_colour(x.float(), uploaded["a"], uploaded.get("b"), 255.0)
        else:
            ((_, op),) = stage.ops
            x = op.apply(x.float(), params)
    if plan.recipe.ops and plan.recipe.ops[-1].terminal:
        return x
    if plan.out_dtype == "float32":
        return kernels.to_unit(x)
    return x if x.dtype == torch.uint8 else kernels.to_uint8(x)
