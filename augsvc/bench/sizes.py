"""``augsvc bench engine --sizes``: how each contender's cost grows with the source size,
and what a batch of mixed sizes costs against one size.

One engine bench per size (same photos fitted to each size, same chain), with augsvc's
whole-image path beside its region-first engine, then a mixed batch of ImageNet-like
sizes (sides 250-500, about 145 distinct sizes in 256 images) measured round-robin
against a one-size 500x375 batch of the same count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from augsvc.bench.engine import (
    Contender,
    EngineBenchResult,
    Inputs,
    albumentations_contender,
    augsvc_contender,
    augsvc_whole_image_contender,
    run_engine_bench,
    torchvision_contender,
)
from augsvc.bench.photos import bench_photos

UNIFORM = (375, 500)
PEERS = (augsvc_whole_image_contender, torchvision_contender, albumentations_contender)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``500x375,2048x1536`` (width x height, as photos are named) -> [(H, W), ...]."""
    sizes = []
    for part in text.split(","):
        try:
            w, h = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise ValueError(f"--sizes: {part!r} is not WIDTHxHEIGHT") from None
        if w < 1 or h < 1:
            raise ValueError(f"--sizes: {part!r} must be positive")
        sizes.append((h, w))
    return sizes


def imagenet_like_sizes(n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` (H, W) with sides in 250-500, about 145 distinct for 256 images (ImageNet's
    validation images are mostly 500 on one side, with every other side in between)."""
    rng = np.random.default_rng(seed)
    distinct = max(1, round(n * 145 / 256))
    pool = [(int(rng.integers(250, 501)), int(rng.integers(250, 501))) for _ in range(distinct)]
    picks = pool + [pool[int(i)] for i in rng.integers(0, distinct, max(0, n - distinct))]
    return [picks[int(i)] for i in rng.permutation(n)]


def mixed_photos(sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    photos: list[np.ndarray | None] = [None] * len(sizes)
    for size in set(sizes):
        rows = [i for i, s in enumerate(sizes) if s == size]
        for i, p in zip(rows, bench_photos(len(rows), size), strict=True):
            photos[i] = p
    return [p for p in photos if p is not None]


@dataclass
class SizesResult:
    chain: str
    per_size: list[tuple[str, EngineBenchResult]]
    mixed: EngineBenchResult | None = None
    mixed_label: str = ""
    environment: dict[str, Any] = field(default_factory=dict)

    def _rates(self, result: EngineBenchResult) -> dict[str, float | None]:
        return {r.name: r.images_per_s for r in result.results}

    def markdown(self) -> str:
        lines = [
            f"augsvc bench engine --sizes: {self.environment.get('header', '')}",
            f"chain: {self.chain}",
            "",
            "| input | augsvc | augsvc whole-image path | torchvision v2 | Albumentations "
            "| augsvc / torchvision | augsvc / Albumentations |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        rows = list(self.per_size)
        if self.mixed is not None:
            rows.append((self.mixed_label, self.mixed))
        for label, result in rows:
            r = self._rates(result)
            lines.append(
                f"| {label} | {_fmt(r.get('augsvc'))} | {_fmt(r.get('augsvc_whole_image'))} | "
                f"{_fmt(r.get('torchvision'))} | {_fmt(r.get('albumentations'))} | "
                f"{_ratio(r.get('augsvc'), r.get('torchvision'))} | "
                f"{_ratio(r.get('augsvc'), r.get('albumentations'))} |"
            )
        if self.mixed is not None:
            r = self._rates(self.mixed)
            lines += [
                "",
                f"mixed sizes / one size ({UNIFORM[1]}x{UNIFORM[0]}), same run: augsvc "
                f"{_ratio(r.get('augsvc'), r.get('augsvc_uniform'))}",
            ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        out = {"target": "engine-sizes", "chain": self.chain, "sizes": {}}
        for label, result in self.per_size:
            out["sizes"][label] = result.to_dict()
        if self.mixed is not None:
            out["mixed"] = {"label": self.mixed_label, **self.mixed.to_dict()}
        return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def run_sizes_bench(
    sizes: list[tuple[int, int]],
    *,
    batch: int = 32,
    repeats: int = 5,
    warmup: int = 1,
    device: str | torch.device = "auto",
    chain: str = "crop",
    mixed: bool = True,
) -> SizesResult:
    per_size = []
    header = ""
    for size in sizes:
        result = run_engine_bench(batch=batch, repeats=repeats, warmup=warmup, device=device,
                                  size=size, peers=PEERS, chain=chain)  # fmt: skip
        header = result.header().split("\n")[0]
        per_size.append((f"{size[1]}x{size[0]}", result))
    out = SizesResult(chain, per_size, environment={"header": header})
    if mixed:
        shapes = imagenet_like_sizes(batch)
        uniform = Inputs.from_photos(bench_photos(batch, UNIFORM))

        def augsvc_uniform_contender(inputs: Inputs, dev: torch.device, seed: int) -> Contender:
            one = Inputs(uniform.photos, uniform.batch, uniform.samples, inputs.chain)
            contender = augsvc_contender(one, dev, seed)
            return Contender("augsvc_uniform", "augsvc, one size", dev, contender.run)

        out.mixed = run_engine_bench(batch=batch, repeats=repeats, warmup=warmup,
                                     device=device, peers=(augsvc_uniform_contender, *PEERS[1:]),
                                     chain=chain, photos=mixed_photos(shapes))  # fmt: skip
        out.mixed_label = f"mixed: {batch} images, {len(set(shapes))} sizes, sides 250-500"
    return out
