"""``augsvc bench targets``: what moving boxes and masks costs, beside the peers.

The engine bench's photos and chain (rotate, random resized crop to 224, hflip, colour
jitter), each photo with 20 boxes and a label map. Every library runs twice on the same
batch, images alone and images with their targets, so each row pair gives that
library's own targets cost:

- augsvc: the batched engine, then each sample's boxes, keypoints-free targets and mask
  through its matrix (``augsvc.targets``), as ``/v1/augment`` does after the pixels;
- Albumentations: ``Compose(..., bbox_params=BboxParams("pascal_voc"))`` with ``mask``;
- torchvision v2: ``BoundingBoxes`` and ``Mask`` tv_tensors through the same transforms,
  then ``SanitizeBoundingBoxes`` (its filter, as augsvc's drop of boxes left outside).

Timing is the engine bench's: warm-up batches, then round-robin timed batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from augsvc.bench.engine import (
    CHAINS,
    Contender,
    EngineBenchResult,
    Inputs,
    Skipped,
    albumentations_transform,
    run_engine_bench,
    torchvision_transform,
)
from augsvc.bench.photos import bench_photos

BOXES_PER_IMAGE = 20
Make = Callable[[Inputs, torch.device, int], Contender]


def _named(make: Make, name: str) -> Make:
    """The engine bench names a peer's row by its function's name."""
    make.__name__ = f"{name}_contender"
    return make


@dataclass(frozen=True)
class Targets:
    """Per photo: xyxy boxes (20, 4) float32, labels (20,), a (H, W) uint8 label map."""

    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    masks: list[np.ndarray]


def make_targets(photos: list[np.ndarray], seed: int = 0) -> Targets:
    """Random boxes (at least 8 px a side) and a label map painting them, per photo."""
    rng = np.random.default_rng(seed)
    boxes, labels, masks = [], [], []
    for photo in photos:
        h, w = photo.shape[:2]
        x1 = rng.uniform(0, w - 8, BOXES_PER_IMAGE)
        y1 = rng.uniform(0, h - 8, BOXES_PER_IMAGE)
        x2 = np.minimum(w, x1 + rng.uniform(8, w / 3, BOXES_PER_IMAGE))
        y2 = np.minimum(h, y1 + rng.uniform(8, h / 3, BOXES_PER_IMAGE))
        b = np.stack([x1, y1, x2, y2], 1).astype(np.float32)
        mask = np.zeros((h, w), dtype=np.uint8)
        for k, (a, c, d, e) in enumerate(b.astype(int)):
            mask[c:e, a:d] = k + 1
        boxes.append(b)
        labels.append(np.arange(1, BOXES_PER_IMAGE + 1))
        masks.append(mask)
    return Targets(boxes, labels, masks)


def _augsvc_with_targets(targets: Targets):
    def make(inputs: Inputs, device: torch.device, seed: int) -> Contender:
        from augsvc.engine import augment, compile_plan
        from augsvc.recipes import parse_recipe
        from augsvc.targets.move import move_batch
        from augsvc.targets.types import ImageTargets

        plan = compile_plan(parse_recipe(inputs.chain.recipe))
        batch = inputs.batch if inputs.batch is not None else inputs.samples
        n = len(batch)
        items = [
            ImageTargets(boxes=b.astype(np.float64), labels=lab, mask=torch.from_numpy(m))
            for b, lab, m in zip(targets.boxes, targets.labels, targets.masks, strict=True)
        ]

        def run(index: int) -> torch.Tensor:
            result = augment(plan, batch, seed=seed, offset=index * n, device=device)
            move_batch(plan, result, items)
            assert isinstance(result.images, torch.Tensor)
            return result.images

        return Contender(
            "augsvc_targets", "augsvc engine + boxes and masks (augsvc.targets)", device, run
        )

    return make


def _torchvision_plain(inputs: Inputs, device: torch.device, seed: int) -> Contender:
    import torchvision

    transform = torchvision_transform(inputs.chain)

    def run(index: int) -> torch.Tensor:
        return torch.stack([transform(img) for img in inputs.samples])

    return Contender(
        "torchvision", f"torchvision {torchvision.__version__} v2, images only", device, run
    )


def _torchvision_with_targets(targets: Targets):
    def make(inputs: Inputs, device: torch.device, seed: int) -> Contender:
        import torchvision
        from torchvision import tv_tensors
        from torchvision.transforms import v2

        transform = v2.Compose([torchvision_transform(inputs.chain), v2.SanitizeBoundingBoxes()])
        items = []
        for img, b, lab, m in zip(
            inputs.samples, targets.boxes, targets.labels, targets.masks, strict=True
        ):
            size = tuple(img.shape[-2:])
            boxes = tv_tensors.BoundingBoxes(torch.from_numpy(b), format="XYXY", canvas_size=size)
            items.append((img, boxes, torch.from_numpy(lab), tv_tensors.Mask(torch.from_numpy(m))))

        def run(index: int) -> torch.Tensor:
            out = []
            for img, boxes, labels, mask in items:
                image, _ = transform(img, {"boxes": boxes, "labels": labels, "masks": mask})
                out.append(image)
            return torch.stack(out)

        return Contender(
            "torchvision_targets",
            f"torchvision {torchvision.__version__} v2 + BoundingBoxes and Mask",
            torch.device("cpu"),
            run,
        )

    return make


def _albumentations(targets: Targets | None):
    def make(inputs: Inputs, device: torch.device, seed: int) -> Contender:
        try:
            import albumentations as A
        except ImportError as exc:
            raise Skipped("albumentations not installed (pip install 'augsvc[bench]')") from exc

        ops = albumentations_transform(inputs.chain, seed).transforms
        if targets is None:
            transform = A.Compose(ops, seed=seed)
        else:
            params = A.BboxParams(format="pascal_voc", label_fields=["labels"])
            transform = A.Compose(ops, bbox_params=params, seed=seed)

        def run(index: int) -> torch.Tensor:
            out = []
            for i, img in enumerate(inputs.photos):
                if targets is None:
                    out.append(transform(image=img)["image"])
                else:
                    got = transform(
                        image=img,
                        mask=targets.masks[i],
                        bboxes=targets.boxes[i],
                        labels=targets.labels[i],
                    )
                    out.append(got["image"])
            return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)

        name = "albumentations" if targets is None else "albumentations_targets"
        what = "images only" if targets is None else "+ bboxes and mask"
        return Contender(name, f"Albumentations {A.__version__} {what}", torch.device("cpu"), run)

    return make


@dataclass
class TargetsBenchResult:
    """The engine bench's rows, read as pairs: each library with and without targets."""

    bench: EngineBenchResult

    PAIRS = (
        ("augsvc", "augsvc_targets"),
        ("torchvision", "torchvision_targets"),
        ("albumentations", "albumentations_targets"),
    )

    def to_dict(self) -> dict[str, Any]:
        return {**self.bench.to_dict(), "target": "targets", "boxes_per_image": BOXES_PER_IMAGE}

    def markdown(self) -> str:
        rows = {r.name: r for r in self.bench.results}
        env = self.bench.environment
        h, w = env["input_hw"]
        lines = [
            f"augsvc bench targets: device {env['device']} ({env['device_name']}); "
            f"batch {env['batch']} {w}x{h} photos, {BOXES_PER_IMAGE} boxes and a label map "
            f"each; {env['warmup']} warm-up + {env['repeats']} timed batches, round-robin\n"
            f"chain: {env['chain']}",
            "",
            "| library | images only, images/s | with boxes + masks, images/s | targets cost |",
            "|---|---:|---:|---:|",
        ]
        for plain, moved in self.PAIRS:
            a, b = rows.get(plain), rows.get(moved)
            if a is None or b is None or a.status != "ok" or b.status != "ok":
                reason = next((r.reason for r in (a, b) if r is not None and r.reason), "")
                lines.append(f"| {plain} | {reason} | | |")
                continue
            assert a.images_per_s is not None and b.images_per_s is not None
            cost = 1 - b.images_per_s / a.images_per_s
            lines.append(f"| {plain} | {a.images_per_s:.1f} | {b.images_per_s:.1f} | {cost:.0%} |")
        return "\n".join(lines)


def run_targets_bench(
    *,
    batch: int = 64,
    repeats: int = 7,
    warmup: int = 2,
    device: str | torch.device = "auto",
    size: tuple[int, int] = (375, 500),
    seed: int = 0,
) -> TargetsBenchResult:
    photos = bench_photos(batch, size)
    targets = make_targets(photos, seed)
    peers = (
        _named(_augsvc_with_targets(targets), "augsvc_targets"),
        _named(_torchvision_plain, "torchvision"),
        _named(_torchvision_with_targets(targets), "torchvision_targets"),
        _named(_albumentations(None), "albumentations"),
        _named(_albumentations(targets), "albumentations_targets"),
    )
    bench = run_engine_bench(
        batch=batch,
        repeats=repeats,
        warmup=warmup,
        device=device,
        size=size,
        seed=seed,
        peers=peers,
        chain="default",
        photos=photos,
    )
    bench.environment["chain"] = CHAINS["default"].text
    return TargetsBenchResult(bench)
