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

from augsvc import codec
from augsvc.datasets import mixing
from augsvc.datasets.frame_targets import batch_target_tensors, read_batch_targets
from augsvc.datasets.order import MAX_EPOCH, rank_positions, sample_keys
from augsvc.datasets.sources import Source
from augsvc.decode_plan import plan_decode
from augsvc.engine import Plan, augment, cpu_workers, fixed_output_size
from augsvc.errors import FieldError, ValidationFailed
from augsvc.pixel_budget import PixelBudget

MAX_BATCH = 1024
#: How long a batch waits for room in the pixel budget (other requests finishing) before
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
    max_pixels: int,
    budget: PixelBudget,
) -> bytes:
    n = len(positions)
    positions = request.rendered(positions, len(order))  # partners: in the batch, own keys
    indices = order[positions]
    read_many = getattr(source, "read_many", None)  # remote sources read a batch at once
    reads = (
        read_many([int(i) for i in indices])
        if read_many is not None
        else [source.read(int(i)) for i in indices]
    )
    # decoders release the GIL; the engine's single-threaded CPU workers are idle here
    headers = list(
        cpu_workers().map(
            lambda r: codec.probe_image(r[0], max_pixels=max_pixels, name=r[2]), reads
        )
    )
    targets = read_batch_targets(source, indices, [h.displayed_hw for h in headers])
    keys = sample_keys(request.epoch, positions)
    planned = plan_decode(plan, headers, seed=request.seed, keys=keys)  # JPEGs DCT-scaled
    what = f"stream batch {batch_index} ({len(headers)} images)"
    with budget.hold(planned.pixels, what, wait_s=BUDGET_WAIT_S):  # held until inputs go
        images = planned.decode()
        result = augment(plan, images, seed=request.seed, keys=keys, device=device)
        del images
    if not isinstance(result.images, torch.Tensor):  # check() fixed the size: channels differ
        counts = " and ".join(str(c) for c in sorted({img.shape[0] for img in result.images}))
        raise ValidationFailed(
            f"batch {batch_index} mixes images that end with {counts} channels, which one "
            "frame cannot hold: set output.channels: 3 (or 1 or 4) in the recipe for a "
            "dataset that mixes grey and colour images",
            errors=[FieldError(("recipe", "output", "channels"), "needed for one channel count")],
        )
    tensors = {"images": result.images[:n], "indices": torch.from_numpy(indices[:n])}
    if reads[0][1] is not None:
        tensors["labels"] = torch.tensor([r[1] for r in reads[:n]], dtype=torch.int64)
    if targets is not None:
        tensors.update(batch_target_tensors(plan, result, targets))
    if request.mix is not None:
        tensors.update(_mix(request, result.images, reads, keys, indices, n))
    metadata = {
        "epoch": str(request.epoch),
        "batch": str(batch_index),
        "rank": str(request.rank),
        "world_size": str(request.world_size),
        "start": str(request.start),
        "position": str(int(positions[0])),
        "digest": plan.digest,
    }
    return codec.frame(codec.images_to_safetensors(tensors, metadata))


def _mix(
    request: StreamRequest,
    images: torch.Tensor,
    reads: list[tuple[bytes, int | None, str]],
    keys: np.ndarray,
    indices: np.ndarray,
    n: int,
) -> dict[str, torch.Tensor]:
    """The frame's mixed images, soft targets, lambdas and partners' dataset indices;
    rows ``n..`` of ``images`` are the partners of rows ``..n``."""
    spec = request.mix
    assert spec is not None
    labels = torch.tensor([r[1] for r in reads], dtype=torch.int64)
    draws = mixing.draw(spec, request.seed, keys[:n], images.shape[-2], images.shape[-1])
    return {
        "images": mixing.mix_images(images[:n], images[n:], draws),
        "soft_targets": mixing.soft_targets(labels[:n], labels[n:], draws.lam, spec),
        "lam": torch.from_numpy(draws.lam),
        "partners": torch.from_numpy(indices[n:]),
    }
