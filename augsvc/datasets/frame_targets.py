"""A stream batch's targets: read from sources that have them, moved with the samples,
packed as the same ``targets.*`` tensors ``/v1/augment`` answers with."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from augsvc.codec.targets import check_mask_sizes
from augsvc.datasets.source_base import Source
from augsvc.targets.types import ImageTargets


def read_batch_targets(
    source: Source, indices: np.ndarray, sizes: Sequence[tuple[int, int]]
) -> list[ImageTargets] | None:
    """Each sample's targets (None: the source has none); masks must match the images'
    decoded sizes, or they would be warped misaligned."""
    if not source.has_targets:
        return None
    targets = [source.read_targets(int(i), hw) for i, hw in zip(indices, sizes, strict=True)]
    masked = [(t.mask, hw) for t, hw in zip(targets, sizes, strict=True) if t.mask is not None]
    check_mask_sizes([tuple(m.shape) for m, _ in masked], [hw for _, hw in masked])
    return targets
