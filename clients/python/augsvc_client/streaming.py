"""Where a dataset stream stands, so a dropped connection resumes without loss.

The server orders an epoch by a permutation fixed by (seed, epoch); rank ``r`` of
``world_size`` takes global positions ``start + r + j * world_size``. After ``m`` samples
have arrived the rank resumes with ``start + m * world_size`` (same rank and world size)
and sees exactly the samples it has not seen yet.

Counting alone trusts the server; every frame also says where it is (``epoch``,
``position`` of its first sample, recipe ``digest``), and the cursor checks each against
what it expects, so a server that resumed elsewhere fails loudly instead of silently
skipping or repeating samples. The first frame pins the recipe digest: a reconnect asks
for ``sha256:<digest>``, not the name, so a recipe updated mid-epoch cannot change the
augmentation of the rest of the epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import request
from .batches import StreamBatch
from .errors import StreamOutOfStep
from .request import Call


@dataclass
class StreamCursor:
    dataset: str
    recipe: str
    seed: int
    epoch: int = 0
    batch_size: int = 64
    rank: int = 0
    world_size: int = 1
    start: int = 0
    drop_last: bool = False
    received: int = 0
    digest: str = ""  # pinned by the first frame
    mix: Mapping[str, Any] | None = None  # MixUp / CutMix settings, sent on every resume

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"need 0 <= rank < world_size, got {self.rank}, {self.world_size}")
        if self.batch_size < 1 or self.start < 0:
            raise ValueError("batch_size must be >= 1 and start >= 0")
        if not isinstance(self.recipe, str):
            raise TypeError("a stream's recipe is a stored reference (name, name@N, sha256:...)")
        request.mix_params(self.mix)  # refuse unknown names before the first request

    @property
    def resume_start(self) -> int:
        """The ``start`` that continues right after the last sample received."""
        return self.start + self.received * self.world_size

    def accept(self, batch: StreamBatch) -> None:
        """Count a frame after checking it is the next one for this rank."""
        expected = self.resume_start + self.rank
        if batch.epoch != self.epoch or batch.position != expected:
            raise StreamOutOfStep(
                f"expected epoch {self.epoch} position {expected} after {self.received} "
                f"samples, got epoch {batch.epoch} position {batch.position}"
            )
        if self.digest and batch.digest != self.digest:
            raise StreamOutOfStep(
                f"the recipe changed mid-stream: {self.digest} became {batch.digest}"
            )
        self.digest = self.digest or batch.digest
        self.received += len(batch)

    def call(self) -> Call:
        return request.stream(
            self.dataset,
            recipe=self.digest or self.recipe,
            seed=self.seed,
            epoch=self.epoch,
            batch_size=self.batch_size,
            rank=self.rank,
            world_size=self.world_size,
            start=self.resume_start,
            drop_last=self.drop_last,
            mix=self.mix,
        )
