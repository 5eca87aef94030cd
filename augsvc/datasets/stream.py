"""Streams of augmented batches from a server-side source (no HTTP here).

``StreamRequest.batches`` splits a rank's share of the epoch into batches of global
positions; ``render_frame`` reads, decodes, augments and packs one batch into an
``application/x-augsvc-stream`` frame; a mixing stream renders each sample's partner in
the same batch and mixes them (datasets/mixing.py). The API runs ``render_frame`` in a worker
thread one batch ahead of the socket, so decode and augmentation overlap sending.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from augsvc.codec.targets import targets_tensors
from augsvc.datasets import mixing
from augsvc.datasets.frame_targets import read_batch_targets
from augsvc.datasets.order import MAX_EPOCH, rank_positions, sample_keys
from augsvc.datasets.source_base import Source
from augsvc.engine import Plan, fixed_output_size
from augsvc.errors import ValidationFailed
from augsvc.pipeline import (
    BatchJob,
    EncodedBatch,
    File,
    FrameEncoder,
    Limits,
    MemoryBudget,
    Rendered,
    run_batch,
)
from augsvc.pipeline.cost import JobCost, SampleShape, estimate
from augsvc.pipeline.encoders import frame_bytes

MAX_BATCH = 1024
#: How long a batch waits for room in the memory budget (other requests finishing) before
#: the stream ends with a 503 ``overloaded`` frame, from which the client resumes.
BUDGET_WAIT_S = 10.0


@dataclass(frozen=True)
class StreamRequest:
    seed: int
    epoch: int = 0
    batch_size: int = 64
    rank: int = 0
    world_size: int = 1
    start: int = 0
    drop_last: bool = False
    #: MixUp / CutMix of each sample with its partner (datasets/mixing.py); None: off
    mix: mixing.MixSpec | None = None

    def check(self, plan: Plan, size: int) -> None:
        """Refuse what cannot stream, before any byte of the response is sent."""
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValidationFailed(f"batch_size must be in 1..{MAX_BATCH}")
        if not 0 <= self.epoch <= MAX_EPOCH:
            raise ValidationFailed(f"epoch must be in 0..{MAX_EPOCH}")
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValidationFailed("rank must be in 0..world_size-1 and world_size >= 1")
        if not 0 <= self.start <= size:
            raise ValidationFailed(f"start must be in 0..{size} (the dataset size)")
        if fixed_output_size(plan) is None:
            raise ValidationFailed(
                "streams need a recipe whose output has one size: end with a crop or "
                "resize to [h, w], or set output.size"
            )

    def costs(self, plan: Plan, prefetch: int) -> tuple[JobCost, JobCost]:
        """What the stream holds for its lifetime (``prefetch`` rendered frames waiting
        and one being written) and the least one batch holds (its outputs, working
        copies and frame, before any input is counted): both known before the first
        frame, so a stream that could never send one is refused before it starts."""
        out_hw = fixed_output_size(plan)
        assert out_hw is not None  # check() refused a plan without one
        channels = plan.recipe.output.channels
        out_channels = 4 if channels == "auto" else int(channels)
        rendered = self.batch_size * (2 if self.mix is not None else 1)
        sample = SampleShape(0, out_channels, out_hw, out_channels)
        what = f"a stream of batch_size {self.batch_size}"
        lower = "batch_size or the recipe's output size"
        frame = frame_bytes(plan, [sample] * self.batch_size)
        buffered = JobCost(what, lower, encoded=(prefetch + 1) * frame)
        batch = estimate(plan, [sample] * rendered, encoded=2 * frame, what=what, lower=lower)
        return buffered, batch

    def rendered(self, positions: np.ndarray, size: int) -> np.ndarray:
        """The positions a batch renders: its own, then (when mixing) their partners."""
        if self.mix is None:
            return positions
        partners = mixing.partner_positions(size, self.seed, self.epoch, positions)
        return np.concatenate([positions, partners])

    def batches(self, size: int) -> list[np.ndarray]:
        """This rank's global positions, cut into batches."""
        positions = rank_positions(size, self.rank, self.world_size, self.start)
        cuts = range(0, len(positions), self.batch_size)
        out = [positions[i : i + self.batch_size] for i in cuts]
        if self.drop_last and out and len(out[-1]) < self.batch_size:
            out.pop()
        return out


def render_frame(
    source: Source,
    plan: Plan,
    request: StreamRequest,
    order: np.ndarray,
    positions: np.ndarray,
    batch_index: int,
    *,
    device: torch.device,
    limits: Limits,
    budget: MemoryBudget,
) -> bytes:
    """One frame through the batch pipeline: the batch's samples (and, when mixing,
    their partners) read, admitted, decoded, augmented and packed."""
    n = len(positions)
    positions = request.rendered(positions, len(order))  # partners: in the batch, own keys
    indices = order[positions]
    reads = source.read_many([int(i) for i in indices])  # object storage: all at once
    keys = sample_keys(request.epoch, positions)
    batch = EncodedBatch(
        [File(data, name) for data, _, name in reads],
        read_targets=(lambda sizes: read_batch_targets(source, indices, sizes))
        if source.has_targets
        else None,
    )
    labels = [label for _, label, _ in reads]

    def compose(rendered: Rendered, images: torch.Tensor) -> dict[str, torch.Tensor]:
        tensors = {"images": images[:n], "indices": torch.from_numpy(indices[:n])}
        if labels[0] is not None:
            tensors["labels"] = torch.tensor(labels[:n], dtype=torch.int64)
        if rendered.targets is not None:
            tensors.update(targets_tensors(rendered.targets))
        if request.mix is not None:
            tensors.update(_mix(request, images, labels, keys, indices, n))
        return tensors

    metadata = {
        "epoch": str(request.epoch),
        "batch": str(batch_index),
        "rank": str(request.rank),
        "world_size": str(request.world_size),
        "start": str(request.start),
        "position": str(int(positions[0])),
        "digest": plan.digest,
    }
    job = BatchJob(
        plan=plan,
        seed=request.seed,
        keys=keys,
        device=device,
        limits=limits,
        budget=budget,
        encoder=FrameEncoder(compose, metadata),
        what=f"stream batch {batch_index} ({len(positions)} images)",
        lower="batch_size or the recipe's output size",
        wait_s=BUDGET_WAIT_S,
    )
    return run_batch(job, batch)


def _mix(
    request: StreamRequest,
    images: torch.Tensor,
    labels: list[int | None],
    keys: np.ndarray,
    indices: np.ndarray,
    n: int,
) -> dict[str, torch.Tensor]:
    """The frame's mixed images, soft targets, lambdas and partners' dataset indices;
    rows ``n..`` of ``images`` are the partners of rows ``..n``."""
    spec = request.mix
    assert spec is not None
    label_tensor = torch.tensor(labels, dtype=torch.int64)
    draws = mixing.draw(spec, request.seed, keys[:n], images.shape[-2], images.shape[-1])
    return {
        "images": mixing.mix_images(images[:n], images[n:], draws),
        "soft_targets": mixing.soft_targets(label_tensor[:n], label_tensor[n:], draws.lam, spec),
        "lam": torch.from_numpy(draws.lam),
        "partners": torch.from_numpy(indices[n:]),
    }
