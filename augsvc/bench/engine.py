"""``augsvc bench engine``: the engine against Kornia, torchvision and Albumentations.

Every contender gets the same decoded photos (500x375 RGB) in the form its users
already hold them (a uint8 NCHW tensor batch for augsvc and Kornia, uint8 CHW tensors
for torchvision, HWC numpy arrays for Albumentations) and produces a uint8
(N, 3, 224, 224) batch from the same chain:

    rotate(±30°) -> random_resized_crop(224, scale 0.5-1) -> hflip(0.5)
    -> color_jitter(0.4, 0.4, 0.4, 0.1)

Everything runs in one process on the same cores; warm-up batches come first, then the
timed batches go round-robin over the contenders (each round starting one contender
later) so background load hits all of them alike. The table reports the median
images/s over the timed batches and its ratio to augsvc's median.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from augsvc.bench.photos import bench_photos

OUT_SIZE = 224
RECIPE: dict[str, Any] = {
    "ops": [
        {"op": "rotate", "degrees": 30},
        {"op": "random_resized_crop", "size": OUT_SIZE, "scale": [0.5, 1.0]},
        {"op": "hflip", "p": 0.5},
        {"op": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
    ]
}
CHAIN = (
    "rotate(±30°) -> random_resized_crop(224, scale 0.5-1) -> hflip(p=0.5) "
    "-> color_jitter(0.4, 0.4, 0.4, 0.1)"
)

CROP_RECIPE: dict[str, Any] = {
    "ops": [
        {"op": "random_resized_crop", "size": OUT_SIZE, "scale": [0.08, 1.0]},
        {"op": "hflip", "p": 0.5},
    ]
}


@dataclass(frozen=True)
class Chain:
    """One augmentation chain as each contender spells it."""

    name: str
    text: str
    recipe: dict[str, Any]


def _policy_recipe(policy: dict[str, Any]) -> dict[str, Any]:
    return {"ops": [*CROP_RECIPE["ops"], policy]}


CHAINS = {
    "default": Chain("default", CHAIN, RECIPE),
    "crop": Chain(
        "crop",
        "random_resized_crop(224, scale 0.08-1) -> hflip(p=0.5) (torchvision's defaults)",
        CROP_RECIPE,
    ),
    "randaugment": Chain(
        "randaugment",
        "random_resized_crop(224) -> hflip(p=0.5) -> rand_augment(num_ops=2, magnitude=9)",
        _policy_recipe({"op": "rand_augment", "num_ops": 2, "magnitude": 9}),
    ),
    "trivialaugment": Chain(
        "trivialaugment",
        "random_resized_crop(224) -> hflip(p=0.5) -> trivial_augment_wide(31)",
        _policy_recipe({"op": "trivial_augment_wide"}),
    ),
}

RunBatch = Callable[[int], torch.Tensor]  # batch index -> uint8 (N, 3, 224, 224)


class Skipped(Exception):
    """A peer library cannot run here (not installed); reported, not fatal."""


@dataclass
class Inputs:
    """The same photos in each form a contender's users already hold them."""

    photos: list[np.ndarray]  # (H, W, 3) uint8, for Albumentations
    batch: torch.Tensor | None  # (N, 3, H, W) uint8 contiguous (one size), augsvc and Kornia
    samples: list[torch.Tensor]  # (3, H, W) uint8, for torchvision (and augsvc, mixed sizes)
    chain: Chain = CHAINS["default"]

    @classmethod
    def from_photos(cls, photos: list[np.ndarray], chain: Chain = CHAINS["default"]) -> Inputs:
        if len({p.shape for p in photos}) > 1:  # mixed sizes: a list, as users hold them
            samples = [torch.from_numpy(p).permute(2, 0, 1).contiguous() for p in photos]
            return cls(photos=photos, batch=None, samples=samples, chain=chain)
        batch = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).contiguous()
        samples = [img.clone() for img in batch.unbind(0)]
        return cls(photos=photos, batch=batch, samples=samples, chain=chain)


@dataclass
class Contender:
    name: str
    description: str
    device: torch.device
    run: RunBatch


@dataclass
class ContenderResult:
    name: str
    description: str
    device: str
    status: str  # "ok", "skipped" (peer not installed) or "failed" (peer raised)
    reason: str | None = None
    images_per_s: float | None = None  # median over the timed batches
    images_per_s_min: float | None = None
    images_per_s_max: float | None = None
    ratio_to_augsvc: float | None = None  # contender / augsvc; < 1 means slower than augsvc
    batch_seconds: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "device": self.device,
            "status": self.status,
            "reason": self.reason,
            "images_per_s": self.images_per_s,
            "images_per_s_min": self.images_per_s_min,
            "images_per_s_max": self.images_per_s_max,
            "ratio_to_augsvc": self.ratio_to_augsvc,
            "batch_seconds": self.batch_seconds,
        }


@dataclass
class EngineBenchResult:
    environment: dict[str, Any]
    results: list[ContenderResult]
    # The last timed batch of each contender that ran, on the CPU (not in the JSON).
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": "engine",
            "environment": self.environment,
            "results": [r.to_dict() for r in self.results],
        }

    def header(self) -> str:
        env = self.environment
        versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        h, w = env["input_hw"]
        return (
            f"augsvc bench engine: device {env['device']} ({env['device_name']}); {versions}; "
            f"{env['cpu_cores']} CPU cores (torch threads {env['torch_threads']}, "
            f"cv2 threads {env['cv2_threads']}); batch {env['batch']}; "
            f"{w}x{h} RGB photos -> {OUT_SIZE}x{OUT_SIZE} uint8; "
            f"{env['warmup']} warm-up + {env['repeats']} timed batches per contender, "
            f"round-robin\nchain: {env['chain']}"
        )

    def markdown(self) -> str:
        lines = [
            self.header(),
            "",
            "| contender | images/s (median) | min-max | ratio to augsvc |",
            "|---|---:|---:|---:|",
        ]
        for r in self.results:
            if r.status != "ok":
                lines.append(f"| {r.description} | {r.status}: {r.reason} | | |")
                continue
            lines.append(
                f"| {r.description} | {r.images_per_s:.1f} | "
                f"{r.images_per_s_min:.1f}-{r.images_per_s_max:.1f} | "
                f"{r.ratio_to_augsvc:.2f} |"
            )
        return "\n".join(lines)


# --- contenders ---------------------------------------------------------------------------


def augsvc_contender(inputs: Inputs, device: torch.device, seed: int) -> Contender:
    from augsvc.engine import augment, compile_plan
    from augsvc.recipes import parse_recipe

    plan = compile_plan(parse_recipe(inputs.chain.recipe))
    batch = inputs.batch if inputs.batch is not None else inputs.samples
    n = len(batch)

    def run(index: int) -> torch.Tensor:
        # Each batch gets fresh sample keys, as consecutive batches of a stream do.
        result = augment(plan, batch, seed=seed, offset=index * n, device=device)
        assert isinstance(result.images, torch.Tensor)
        return result.images

    return Contender("augsvc", "augsvc engine (batched, per-sample seeded)", device, run)


def augsvc_whole_image_contender(inputs: Inputs, device: torch.device, seed: int) -> Contender:
    """augsvc's engine without source regions (every source converted and pre-shrunk
    whole, grouped by input size): what the region-first engine gains."""
    from augsvc.engine import augment, compile_plan
    from augsvc.recipes import parse_recipe

    plan = compile_plan(parse_recipe(inputs.chain.recipe))
    batch = inputs.batch if inputs.batch is not None else inputs.samples
    n = len(batch)

    def run(index: int) -> torch.Tensor:
        result = augment(plan, batch, seed=seed, offset=index * n, device=device,
                         region_first=False)  # fmt: skip
        assert isinstance(result.images, torch.Tensor)
        return result.images

    return Contender("augsvc_whole_image", "augsvc engine, whole-image path", device, run)


def kornia_contender(inputs: Inputs, device: torch.device, seed: int) -> Contender:
    import kornia
    import kornia.augmentation as K

    if inputs.batch is None or inputs.chain.name != "default":
        raise Skipped("runs the default chain on one-size batches only")
    # ColorJitter (not ColorJiggle) is Kornia's port of torchvision's ColorJitter formulas.
    aug = K.AugmentationSequential(
        K.RandomRotation(30.0, p=1.0),
        K.RandomResizedCrop((OUT_SIZE, OUT_SIZE), scale=(0.5, 1.0)),
        K.RandomHorizontalFlip(p=0.5),
        K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0),
    ).to(device)
    # A CUDA user's DataLoader hands over pinned batches; the copy itself is timed,
    # as augsvc's is.
    batch = inputs.batch.pin_memory() if device.type == "cuda" else inputs.batch

    def run(index: int) -> torch.Tensor:
        x = batch.to(device, non_blocking=True).float().div_(255.0)
        with torch.no_grad():
            y = aug(x)
        return y.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)

    return Contender(
        "kornia",
        f"Kornia {kornia.__version__} AugmentationSequential (batched, float 0-1)",
        device,
        run,
    )


def torchvision_transform(chain: Chain):
    from torchvision.transforms import v2

    crop = [v2.RandomResizedCrop(OUT_SIZE, antialias=True), v2.RandomHorizontalFlip()]
    if chain.name == "crop":
        return v2.Compose(crop)
    if chain.name == "randaugment":  # its defaults: nearest for the policy's geometry
        return v2.Compose([*crop, v2.RandAugment(num_ops=2, magnitude=9)])
    if chain.name == "trivialaugment":
        return v2.Compose([*crop, v2.TrivialAugmentWide()])
    # Bilinear rotation like every other contender (v2.RandomRotation defaults to
    # nearest, which is cheaper and visibly jaggier).
    return v2.Compose(
        [
            v2.RandomRotation(30, interpolation=v2.InterpolationMode.BILINEAR),
            v2.RandomResizedCrop(OUT_SIZE, scale=(0.5, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(0.4, 0.4, 0.4, 0.1),
        ]
    )


def albumentations_transform(chain: Chain, seed: int):
    import albumentations as A

    crop = [
        A.RandomResizedCrop(size=(OUT_SIZE, OUT_SIZE), scale=(0.08, 1.0), p=1.0),
        A.HorizontalFlip(p=0.5),
    ]
    if chain.name == "crop":
        ops = crop
    elif chain.name in ("randaugment", "trivialaugment"):
        # No RandAugment in Albumentations: its closest spelling, SomeOf (2 ops) or
        # OneOf over RandAugment's ops at about magnitude 9 of 30.
        policy = [
            A.NoOp(),
            A.Affine(shear={"x": (-5, 5), "y": (0, 0)}, p=1.0),
            A.Affine(shear={"x": (0, 0), "y": (-5, 5)}, p=1.0),
            A.Affine(translate_percent={"x": (-0.14, 0.14), "y": (0, 0)}, p=1.0),
            A.Affine(translate_percent={"x": (0, 0), "y": (-0.14, 0.14)}, p=1.0),
            A.Rotate(limit=9, p=1.0),
            A.ColorJitter(brightness=0.27, contrast=0, saturation=0, hue=0, p=1.0),
            A.ColorJitter(brightness=0, contrast=0, saturation=0.27, hue=0, p=1.0),
            A.ColorJitter(brightness=0, contrast=0.27, saturation=0, hue=0, p=1.0),
            A.Sharpen(p=1.0),
            A.Posterize(num_bits=7, p=1.0),
            A.Solarize(threshold_range=(0.7, 0.7), p=1.0),
            A.AutoContrast(p=1.0),
            A.Equalize(p=1.0),
        ]
        pick = A.SomeOf(policy, n=2, replace=True) if chain.name == "randaugment" else None
        ops = [*crop, pick or A.OneOf(policy, p=1.0)]
    else:
        ops = [
            A.Rotate(limit=30, p=1.0),
            A.RandomResizedCrop(size=(OUT_SIZE, OUT_SIZE), scale=(0.5, 1.0), p=1.0),
            A.HorizontalFlip(p=0.5),
            A.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, p=1.0),
        ]
    return A.Compose(ops, seed=seed)


def torchvision_contender(inputs: Inputs, device: torch.device, seed: int) -> Contender:
    import torchvision

    transform = torchvision_transform(inputs.chain)
    samples = inputs.samples

    def run(index: int) -> torch.Tensor:
        return torch.stack([transform(img) for img in samples])

    return Contender(
        "torchvision",
        f"torchvision {torchvision.__version__} v2.Compose (per sample, uint8)",
        torch.device("cpu"),
        run,
    )


def albumentations_contender(inputs: Inputs, device: torch.device, seed: int) -> Contender:
    try:
        import albumentations as A
    except ImportError as exc:
        raise Skipped("albumentations not installed (pip install 'augsvc[bench]')") from exc

    transform = albumentations_transform(inputs.chain, seed)
    photos = inputs.photos

    def run(index: int) -> torch.Tensor:
        out = np.stack([transform(image=img)["image"] for img in photos])
        # ToTensorV2's layout change: a view, as users feed it to torch.
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    return Contender(
        "albumentations",
        f"Albumentations {A.__version__} Compose (per sample, HWC uint8, OpenCV)",
        torch.device("cpu"),
        run,
    )


def timm_contender(inputs: Inputs, device: torch.device, seed: int) -> Contender:
    """timm's rand_augment_transform on PIL images, after torchvision's PIL crop and
    flip, as timm's create_transform builds its training pipeline."""
    if inputs.chain.name != "randaugment":
        raise Skipped("timm has no policy for this chain")
    try:
        import timm
        from timm.data.auto_augment import rand_augment_transform
    except ImportError as exc:
        raise Skipped("timm not installed (pip install 'augsvc[bench]')") from exc
    from PIL import Image
    from torchvision import transforms as v1

    hparams = {"translate_const": int(OUT_SIZE * 0.45), "img_mean": (124, 116, 104)}
    transform = v1.Compose([
        v1.RandomResizedCrop(OUT_SIZE), v1.RandomHorizontalFlip(),
        rand_augment_transform("rand-m9-n2-mstd0", hparams),
    ])  # fmt: skip
    images = [Image.fromarray(p) for p in inputs.photos]

    def run(index: int) -> torch.Tensor:
        out = np.stack([np.asarray(transform(img)) for img in images])
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    return Contender(
        "timm",
        f"timm {timm.__version__} rand_augment_transform (per sample, PIL)",
        torch.device("cpu"),
        run,
    )


PEERS = (kornia_contender, torchvision_contender, albumentations_contender, timm_contender)


# --- measurement --------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_batch(contender: Contender, index: int) -> tuple[float, torch.Tensor]:
    _sync(contender.device)
    start = time.perf_counter()
    out = contender.run(index)
    _sync(contender.device)
    return time.perf_counter() - start, out


def set_cv2_threads(count: int) -> int | None:
    """Give OpenCV (Albumentations' backend) the same thread count as torch."""
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(count)
    return int(cv2.getNumThreads())


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    versions = {"torch": torch.__version__}
    for name in ("kornia", "torchvision", "albumentations", "cv2", "timm"):
        try:
            module = __import__(name)
        except ImportError:
            versions[name] = "not installed"
        else:
            versions[name] = str(getattr(module, "__version__", "?"))
    return versions


def _environment(
    device: torch.device, batch: int, repeats: int, warmup: int, hw: tuple[int, int]
) -> dict[str, Any]:
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    torch_threads = torch.get_num_threads()
    return {
        "device": str(device),
        "device_name": device_name,
        "cpu_name": _cpu_name(),
        "cpu_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch_threads,
        "cv2_threads": set_cv2_threads(torch_threads),
        "versions": _versions(),
        "python": platform.python_version(),
        "batch": batch,
        "repeats": repeats,
        "warmup": warmup,
        "input_hw": list(hw),
        "output_hw": [OUT_SIZE, OUT_SIZE],
        "chain": CHAIN,
        "recipe": RECIPE,
    }


def run_engine_bench(
    *,
    batch: int = 64,
    repeats: int = 7,
    warmup: int = 2,
    device: str | torch.device = "auto",
    size: tuple[int, int] = (375, 500),
    seed: int = 0,
    peers: tuple[Callable[[Inputs, torch.device, int], Contender], ...] = PEERS,
    chain: str = "default",
    photos: list[np.ndarray] | None = None,
) -> EngineBenchResult:
    """Measure every contender on the same ``batch`` photos of ``size`` = (H, W).

    augsvc and Kornia run on ``device``; torchvision and Albumentations run per sample
    on the CPU, as their users run them. Peers that are not installed are reported as
    skipped; a peer that raises while setting up or warming up is reported as failed.
    """
    from augsvc.engine import resolve_device

    if batch < 1 or repeats < 1 or warmup < 0:
        raise ValueError("batch and repeats must be >= 1, warmup >= 0")
    dev = resolve_device(device) if isinstance(device, str) else device
    torch.manual_seed(seed)  # Kornia and torchvision draw from torch's global RNG
    environment = _environment(dev, batch, repeats, warmup, size)
    environment["chain"] = CHAINS[chain].text
    environment["recipe"] = CHAINS[chain].recipe
    inputs = Inputs.from_photos(photos or bench_photos(batch, size), CHAINS[chain])

    contenders = [augsvc_contender(inputs, dev, seed)]
    results: dict[str, ContenderResult] = {}
    order: list[str] = ["augsvc"]
    for make in peers:
        name = make.__name__.removesuffix("_contender")
        order.append(name)
        try:
            contenders.append(make(inputs, dev, seed))
        except Skipped as exc:
            results[name] = ContenderResult(name, name, "-", "skipped", str(exc))
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            results[name] = ContenderResult(name, name, "-", "failed", reason)

    outputs: dict[str, torch.Tensor] = {}
    for index in range(warmup):
        for contender in list(contenders):
            try:
                _time_batch(contender, index)
            except Exception as exc:
                if contender.name == "augsvc":
                    raise
                contenders.remove(contender)
                results[contender.name] = ContenderResult(
                    contender.name,
                    contender.description,
                    str(contender.device),
                    "failed",
                    f"{type(exc).__name__}: {exc}",
                )

    seconds: dict[str, list[float]] = {c.name: [] for c in contenders}
    for r in range(repeats):
        shift = r % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            elapsed, out = _time_batch(contender, warmup + r)
            seconds[contender.name].append(elapsed)
            if r == repeats - 1:
                outputs[contender.name] = out.detach().cpu()

    rates = {name: [batch / s for s in secs] for name, secs in seconds.items()}
    reference = statistics.median(rates["augsvc"])
    for contender in contenders:
        rate = rates[contender.name]
        median = statistics.median(rate)
        results[contender.name] = ContenderResult(
            name=contender.name,
            description=contender.description,
            device=str(contender.device),
            status="ok",
            images_per_s=median,
            images_per_s_min=min(rate),
            images_per_s_max=max(rate),
            ratio_to_augsvc=1.0 if contender.name == "augsvc" else median / reference,
            batch_seconds=seconds[contender.name],
        )
    return EngineBenchResult(environment, [results[name] for name in order], outputs)
