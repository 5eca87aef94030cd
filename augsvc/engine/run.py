"""The engine's entry point: a plan and a batch of uint8 images in, augmented batch out."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from augsvc.engine import kernels
from augsvc.engine.colour import apply_colour
from augsvc.engine.plan import Plan, Sampled, sample_plan
from augsvc.engine.rng import MAX_SEED
from augsvc.errors import PayloadTooLarge, ValidationFailed

Images = torch.Tensor | Sequence[torch.Tensor]


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
    return device


def _as_list(images: Images) -> list[torch.Tensor]:
    items = list(images.unbind(0)) if isinstance(images, torch.Tensor) else list(images)
    if not items:
        raise ValidationFailed("no images to augment")
    for i, img in enumerate(items):
        if not isinstance(img, torch.Tensor) or img.dtype != torch.uint8 or img.dim() != 3:
            raise ValidationFailed(f"image {i}: expected a uint8 tensor (C,H,W)")
        if img.shape[0] not in (1, 3, 4) or img.shape[1] < 1 or img.shape[2] < 1:
            raise ValidationFailed(f"image {i}: shape {tuple(img.shape)} is not (1|3|4, H, W)")
    return items


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
) -> AugmentResult:
    """Augment a batch. Sample i gets key ``offset + i`` unless ``keys`` are given;
    its output depends only on (recipe, seed, key, image), never on the batch."""
    items = _as_list(images)
    n = len(items)
    keys_arr = (
        np.arange(offset, offset + n, dtype=np.int64)
        if keys is None
        else np.asarray(keys, dtype=np.int64)
    )
    if len(keys_arr) != n or (keys_arr < 0).any():
        raise ValidationFailed("keys must be one non-negative integer per image")
    if not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
        raise ValidationFailed(f"seed must be an integer in 0..{MAX_SEED}, got {seed!r}")
    device = resolve_device(device) if isinstance(device, str) else device
    in_hw = np.array([img.shape[1:] for img in items], dtype=np.int64)
    sampled = sample_plan(plan, seed, keys_arr, in_hw)
    out_pixels = int(np.prod(sampled.out_hw, axis=1).sum())
    if max_output_pixels is not None and out_pixels > max_output_pixels:
        raise PayloadTooLarge(
            f"the batch would produce {out_pixels} output pixels; the limit is {max_output_pixels}"
        )
    channels = [output_channels(plan, img.shape[0]) for img in items]
    out_shapes = {(c, *hw) for c, hw in zip(channels, sampled.out_hw.tolist(), strict=True)}
    # Grouped by input shape (C, H, W), which also fixes the channels after conversion:
    # a group always stacks, and is converted on the device in one step.
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(items):
        groups.setdefault(tuple(img.shape), []).append(i)
    out_dtype = torch.float32 if plan.out_dtype == "float32" else torch.uint8
    result: torch.Tensor | list[torch.Tensor]
    if len(out_shapes) == 1:
        result = torch.empty((n, *out_shapes.pop()), dtype=out_dtype, device=device)
    else:
        result = [torch.empty(0)] * n
    for rows in groups.values():
        if isinstance(images, torch.Tensor) and len(rows) == n:
            batch = images
        else:
            batch = torch.stack([items[i] for i in rows])
        batch = kernels.convert_channels(_to_device(batch, device), channels[rows[0]])
        out = run_stages(plan, sampled.take(np.array(rows)), batch)
        if isinstance(result, torch.Tensor):
            if len(rows) == n:
                result = out
            else:
                result[torch.as_tensor(rows, device=device)] = out
        else:
            for j, i in enumerate(rows):
                result[i] = out[j]
    return AugmentResult(images=result, keys=keys_arr, params=sampled.record)


def _to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda" and batch.device.type == "cpu":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


def chunk_size(device: torch.device) -> int:
    """Samples processed together. On CPU a few at a time keep each sample's float
    copy in cache through warp, colour and conversion (whole batches spill out of it);
    a GPU wants the whole group in one launch."""
    return 1 << 30 if device.type == "cuda" else 4


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _forget_pools_after_fork() -> None:
    """A forked child (a DataLoader worker) inherits the pool objects but not their
    threads; submitting to one would wait forever, so the child starts afresh."""
    global _pools, _pools_lock
    _pools, _pools_lock = {}, threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_after_fork)


def _single_threaded() -> None:
    torch.set_num_threads(1)  # per thread under OpenMP: the caller's setting is untouched


def cpu_workers() -> ThreadPoolExecutor:
    """Threads that run CPU chunks side by side, each with single-threaded torch ops.

    Intra-op threading over a chunk's small tensors costs about a third more CPU than
    it saves, and under CPU contention OpenMP's spinning collapses throughput (7x
    slower seen with one other busy process); chunks in parallel avoid both. The pool
    has as many threads as torch would use in the calling thread.

    ``torch.get_num_threads`` is a per-thread value under OpenMP, so two callers can
    ask for different sizes at once. Each size keeps its own pool and no pool is
    ever shut down: replacing a pool that another thread is submitting to failed
    that thread's work ("cannot schedule new futures after shutdown"). Threads start
    lazily and idle ones cost nothing, and there are only ever a few sizes.
    """
    want = torch.get_num_threads()
    with _pools_lock:
        pool = _pools.get(want)
        if pool is None:
            pool = _pools[want] = ThreadPoolExecutor(
                want, "augsvc-cpu", initializer=_single_threaded
            )
        return pool


def run_stages(plan: Plan, sampled: Sampled, x: torch.Tensor) -> torch.Tensor:
    """Execute every stage on one same-size group, a chunk of samples at a time.

    Every stage is per-sample, so chunking (and running chunks in parallel) never
    changes a result.
    """
    step = chunk_size(x.device)
    n = x.shape[0]
    if n <= step:
        return _run_chunk(plan, sampled, x)
    chunks = [
        (sampled.take(np.arange(i, min(i + step, n))), x[i : i + step]) for i in range(0, n, step)
    ]
    if torch.get_num_threads() == 1:
        return torch.cat([_run_chunk(plan, s, c) for s, c in chunks])
    pool = cpu_workers()
    return torch.cat(list(pool.map(lambda sc: _run_chunk(plan, *sc), chunks)))


def _run_chunk(plan: Plan, sampled: Sampled, x: torch.Tensor) -> torch.Tensor:
    opts = plan.recipe.output
    for stage, params in zip(plan.stages, sampled.stages, strict=True):
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
            a = torch.as_tensor(params["a"], dtype=torch.float32, device=x.device)
            b = params.get("b")
            if b is not None:
                b = torch.as_tensor(b, dtype=torch.float32, device=x.device)
            x = apply_colour(x.float(), a, b, 255.0)
        else:
            ((_, op),) = stage.ops
            x = op.apply(x.float(), params)
    if plan.recipe.ops and plan.recipe.ops[-1].terminal:
        return x
    if plan.out_dtype == "float32":
        return kernels.to_unit(x)
    return x if x.dtype == torch.uint8 else kernels.to_uint8(x)
