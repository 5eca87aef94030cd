"""The engine's entry point: a plan and a batch of uint8 images in, augmented batch out."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from augsvc.engine import region, varlen_warp
from augsvc.engine.plan import Plan, Sampled, sample_plan
from augsvc.engine.region import ScaledSource
from augsvc.errors import PayloadTooLarge, ValidationFailed
from augsvc.maths import geometry, kernels
from augsvc.maths.colour import apply_colour
from augsvc.maths.rng import MAX_SEED
from augsvc.maths.transfer import upload_packed, upload_params

Images = torch.Tensor | Sequence[torch.Tensor | ScaledSource]


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


@dataclass
class _Sources:
    """The inputs as the engine works on them: each sample's pixels, the size of the
    image its parameters are drawn for, for a scaled decode the map from that image's
    pixel coordinates to the pixels' frame (None for a full image), and for a region
    decode where the pixels lie in that frame and the frame's size (else the pixels'
    own)."""

    pixels: list[torch.Tensor]
    full_hw: np.ndarray  # (N,2)
    to_pixels: list[np.ndarray | None]
    regions: list[tuple[int, int, int, int] | None]
    frame_hw: np.ndarray  # (N,2)

    @property
    def scaled(self) -> bool:
        return any(m is not None for m in self.to_pixels)


def _as_sources(images: Images) -> _Sources:
    items = list(images.unbind(0)) if isinstance(images, torch.Tensor) else list(images)
    if not items:
        raise ValidationFailed("no images to augment")
    pixels, full_hw, maps, regions, frames = [], [], [], [], []
    for i, item in enumerate(items):
        img = item if isinstance(item, torch.Tensor) else getattr(item, "pixels", None)
        if not isinstance(img, torch.Tensor) or img.dtype != torch.uint8 or img.dim() != 3:
            raise ValidationFailed(f"image {i}: expected a uint8 tensor (C,H,W)")
        if img.shape[0] not in (1, 3, 4) or img.shape[1] < 1 or img.shape[2] < 1:
            raise ValidationFailed(f"image {i}: shape {tuple(img.shape)} is not (1|3|4, H, W)")
        pixels.append(img)
        part = None if isinstance(item, torch.Tensor) else getattr(item, "region", None)
        regions.append(part)
        if part is None:
            frames.append(tuple(img.shape[1:]))
        else:
            top, left, bottom, right = part
            if (bottom - top, right - left) != tuple(img.shape[1:]):
                raise ValidationFailed(f"image {i}: its pixels are not the size of its region")
            frames.append(tuple(int(v) for v in item.frame_hw))
        if isinstance(item, torch.Tensor) or (item.to_pixels is None and part is None):
            full_hw.append(tuple(img.shape[1:]))
            maps.append(None)
        else:
            full_hw.append(tuple(int(v) for v in item.full_hw))
            maps.append(None if item.to_pixels is None else np.asarray(item.to_pixels, float))
    return _Sources(
        pixels,
        np.array(full_hw, dtype=np.int64).reshape(-1, 2),
        maps,
        regions,
        np.array(frames, dtype=np.int64).reshape(-1, 2),
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
    sources = _as_sources(images)
    n = len(sources.pixels)
    keys_arr = (
        np.arange(offset, offset + n, dtype=np.int64)
        if keys is None
        else np.asarray(keys, dtype=np.int64)
    )
    if len(keys_arr) != n or (keys_arr < 0).any():
        raise ValidationFailed("keys must be one non-negative integer per image")
    if not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
        raise ValidationFailed(f"seed must be an integer in 0..{MAX_SEED}, got {seed!r}")
    if sources.scaled and not starts_with_warp(plan):
        raise ValidationFailed("scaled decodes need a plan whose first stage is a warp")
    partial = any(r is not None for r in sources.regions)
    if partial and not (region_first and starts_with_warp(plan)):
        raise ValidationFailed(
            "region decodes need the region-first path and a plan that starts with a warp"
        )
    device = resolve_device(device) if isinstance(device, str) else device
    sampled = sample_plan(plan, seed, keys_arr, sources.full_hw)
    out_pixels = int(np.prod(sampled.out_hw, axis=1).sum())
    if max_output_pixels is not None and out_pixels > max_output_pixels:
        raise PayloadTooLarge(
            f"the batch would produce {out_pixels} output pixels; the limit is {max_output_pixels}"
        )
    channels = [output_channels(plan, img.shape[0]) for img in sources.pixels]
    out_shapes = {(c, *hw) for c, hw in zip(channels, sampled.out_hw.tolist(), strict=True)}
    run = sampled
    if sources.scaled:
        run = sampled.take(np.arange(n))
        run.stages[0]["matrix"] = region.source_matrices(
            sampled.stages[0]["matrix"], sources.to_pixels
        )
    if region_first and starts_with_warp(plan):
        parts = _run_region_first(plan, run, sources, channels, device)
    else:
        batch = images if isinstance(images, torch.Tensor) else None
        parts = _run_by_shape(plan, run, sources.pixels, batch, channels, device)
    out_dtype = torch.float32 if plan.out_dtype == "float32" else torch.uint8
    result: torch.Tensor | list[torch.Tensor]
    if len(out_shapes) == 1:
        result = torch.empty((n, *out_shapes.pop()), dtype=out_dtype, device=device)
    else:
        result = [torch.empty(0)] * n
    for rows, out in parts:
        if isinstance(result, torch.Tensor):
            if len(rows) == n:
                result = out
            else:  # whole rows copied, where indexed assignment goes element by element
                index = torch.as_tensor(rows, device=device)
                result.index_copy_(0, index, out.to(result.dtype))
        else:
            for j, i in enumerate(rows):
                result[i] = out[j]
    return AugmentResult(images=result, keys=keys_arr, params=sampled.record)


Part = tuple[list[int], torch.Tensor]  # sample indices and their outputs, in that order


def _run_by_shape(
    plan: Plan,
    sampled: Sampled,
    pixels: list[torch.Tensor],
    batch: torch.Tensor | None,
    channels: list[int],
    device: torch.device,
) -> list[Part]:
    """The whole-image path: groups of one input shape (C, H, W), which also fixes the
    channels after conversion, so a group stacks and is converted in one step."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(pixels):
        groups.setdefault(tuple(img.shape), []).append(i)
    parts = []
    for rows in groups.values():
        if batch is not None and len(rows) == len(pixels):
            x = batch
        else:
            x = torch.stack([pixels[i] for i in rows])
        x = kernels.convert_channels(_to_device(x, device), channels[rows[0]])
        parts.append((rows, run_stages(plan, sampled.take(np.array(rows)), x)))
    return parts


def _run_region_first(
    plan: Plan,
    sampled: Sampled,
    sources: _Sources,
    channels: list[int],
    device: torch.device,
) -> list[Part]:
    """Each sample's first warp reads only its source region (``engine.region``), so
    inputs of any size meet after it: samples are grouped by what the warp makes (the
    channels and the first warp's output size), never by input size, and a group runs
    the rest of the plan in chunks on the CPU workers, as the whole-image path does."""
    opts = plan.recipe.output
    first = sampled.stages[0]
    pixels = sources.pixels
    regions = region.plan_regions(
        first["matrix"],
        first["out_hw"],
        sources.frame_hw,
        mode=opts.interpolation,
        padding_mode=opts.padding_mode,
        antialias=opts.antialias,
    )
    _check_decoded(regions.boxes, sources.regions)
    origins = [(0, 0) if r is None else r[:2] for r in sources.regions]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, hw in enumerate(first["out_hw"].tolist()):
        groups.setdefault((channels[i], *hw), []).append(i)
    out_pixels = np.prod(first["out_hw"], axis=1)
    chunks = [
        chunk
        for rows in groups.values()
        for chunk in split_rows(rows, out_pixels[rows], chunk_size(device), device_chunk(device))
    ]

    affine_first = geometry.affine_rows(regions.matrices)
    constant_fill = opts.padding_mode == "constant" and any(opts.fill)
    # Per sample (its own matrix decides), so its path never depends on its batch-mates.
    one_pass = affine_first & (not constant_fill)  # one grid_sample of an affine map
    together = affine_first & varlen_warp.supported(
        opts.interpolation, opts.padding_mode, opts.fill, True
    )
    # Every sample's sampling map at once, in numpy: the same 3x3 maths per sample as
    # alone (each matrix of a stack is its own product), without its per-call cost.
    factors = regions.factors
    shrunk_hw = -(-(regions.boxes[:, 2:] - regions.boxes[:, :2]) // factors[:, None])
    thetas = kernels.sampling_thetas(regions.matrices, shrunk_hw, first["out_hw"])

    def crop(i: int) -> torch.Tensor:
        top, left, bottom, right = regions.boxes[i].tolist()
        y, x = origins[i]
        return pixels[i][None, :, top - y : bottom - y, left - x : right - x]

    def warp_one(i: int, src: torch.Tensor, theta: torch.Tensor | None) -> torch.Tensor:
        return kernels.warp_source(
            kernels.convert_channels(src, channels[i]),
            int(factors[i]),
            regions.matrices[i : i + 1],
            tuple(first["out_hw"][i].tolist()),
            mode=opts.interpolation,
            padding_mode=opts.padding_mode,
            fill=opts.fill,
            theta=theta,
        )

    def cpu_theta(i: int) -> torch.Tensor | None:
        return torch.from_numpy(thetas[i : i + 1]) if one_pass[i] else None

    def warp_together(rows: list[int], srcs: list[torch.Tensor]) -> torch.Tensor:
        """The chunk's first warp as one pass over all its regions (a device's way)."""
        shrunk = []
        for i, src in zip(rows, srcs, strict=True):
            src = kernels.convert_channels(src, channels[i])
            k = int(factors[i])
            shrunk.append(kernels.box_shrink(src, k) if k > 1 else src)
        out_hw = tuple(first["out_hw"][rows[0]].tolist())
        return varlen_warp.warp_varlen(
            shrunk,
            regions.matrices[rows],
            out_hw,
            mode=opts.interpolation,
            padding_mode="zeros" if opts.padding_mode == "constant" else opts.padding_mode,
        )

    def run_chunk(rows: list[int]) -> Part:
        if device.type == "cuda":
            x = warp_on_device(rows)
        else:
            x = torch.cat([warp_one(i, _to_device(crop(i), device), cpu_theta(i)) for i in rows])
        return rows, _run_chunk(plan, sampled.take(np.array(rows)), x, start=1)

    def warp_on_device(rows: list[int]) -> torch.Tensor:
        """One upload of every region; the affine samples warped in one pass, the rest
        one by one with their sampling maps uploaded together."""
        srcs = upload_packed([crop(i) for i in rows], device)
        joint = [j for j, i in enumerate(rows) if together[i]]
        if len(joint) == len(rows):
            return warp_together(rows, srcs)
        parts: list[torch.Tensor] = [torch.empty(0)] * len(rows)
        if joint:
            out = warp_together([rows[j] for j in joint], [srcs[j] for j in joint])
            for m, j in enumerate(joint):
                parts[j] = out[m : m + 1]
        alone = [j for j in range(len(rows)) if not together[rows[j]]]
        uploaded = upload_params({"t": thetas[[rows[j] for j in alone]]}, device)["t"]
        for m, j in enumerate(alone):
            theta = uploaded[m : m + 1] if one_pass[rows[j]] else None
            parts[j] = warp_one(rows[j], srcs[j], theta)
        return torch.cat(parts)

    if device.type == "cuda" or torch.get_num_threads() == 1 or len(chunks) == 1:
        return [run_chunk(rows) for rows in chunks]
    return list(cpu_workers().map(run_chunk, chunks))


def _check_decoded(boxes: np.ndarray, decoded: list[tuple[int, int, int, int] | None]) -> None:
    """A region decode holds only the box planned for its sample; a warp that reaches
    outside it would read pixels never decoded, so that is a planning bug, not a
    request to serve."""
    for i, held in enumerate(decoded):
        if held is None:
            continue
        top, left, bottom, right = boxes[i].tolist()
        if top < held[0] or left < held[1] or bottom > held[2] or right > held[3]:
            raise RuntimeError(
                f"sample {i} reads rows {top}:{bottom}, columns {left}:{right} of a region "
                f"decode that holds only {held}: the decode was planned for other draws"
            )


def _to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda" and batch.device.type == "cpu":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


def chunk_size(device: torch.device) -> int:
    """Samples processed together. On CPU a few at a time keep each sample's float
    copy in cache through warp, colour and conversion (whole batches spill out of it);
    a GPU wants the whole group in one launch, up to :func:`device_chunk` pixels."""
    return 1 << 30 if device.type == "cuda" else 4


#: Output pixels a CUDA chunk may hold: each stage keeps a float copy or two of every
#: channel (tens of bytes a pixel), so this bounds device memory near 2 GiB whatever
#: the request's pixel budget admitted, while a batch of 256 crops of 224 is one chunk.
DEVICE_CHUNK_PIXELS = 1 << 25


def device_chunk(device: torch.device) -> int | None:
    return DEVICE_CHUNK_PIXELS if device.type == "cuda" else None


def split_rows(
    rows: list[int], pixels: np.ndarray, step: int, max_pixels: int | None
) -> list[list[int]]:
    """``rows`` in order, cut into runs of at most ``step`` rows and (when given) at
    most ``max_pixels`` pixels, a row larger than that alone in its run."""
    chunks: list[list[int]] = []
    held = 0
    for row, px in zip(rows, np.asarray(pixels).tolist(), strict=True):
        full = chunks and (
            len(chunks[-1]) >= step or (max_pixels is not None and held + px > max_pixels)
        )
        if not chunks or full:
            chunks.append([])
            held = 0
        chunks[-1].append(row)
        held += px
    return chunks


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
    n, _, h, w = x.shape
    step = chunk_size(x.device)
    limit = device_chunk(x.device)
    if limit is not None:
        step = max(1, min(step, limit // (h * w)))
    if n <= step:
        return _run_chunk(plan, sampled, x)
    chunks = [
        (sampled.take(np.arange(i, min(i + step, n))), x[i : i + step]) for i in range(0, n, step)
    ]
    if torch.get_num_threads() == 1 or x.device.type == "cuda":  # a stream is per thread
        return torch.cat([_run_chunk(plan, s, c) for s, c in chunks])
    pool = cpu_workers()
    return torch.cat(list(pool.map(lambda sc: _run_chunk(plan, *sc), chunks)))


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
