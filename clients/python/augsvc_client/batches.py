"""What calls return: an augmented batch, and one batch of a server-side stream.

``images`` and the per-sample arrays are numpy arrays, or torch tensors when the call
asked for ``output="torch"``. Images are always (N, C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AugmentedBatch:
    """The answer to one augment call (or one step of ``augment_iter``).

    ``keys`` are the sample keys the server drew with (``offset + i``); ``params`` holds
    the per-sample parameters when ``return_params=True`` (e.g. ``params["matrix"]``, the
    composed (N, 3, 3) matrix); ``seed`` and ``digest`` say exactly how to reproduce it.
    ``labels`` is filled by ``augment_iter`` when the dataset items carry labels.
    ``targets`` holds, per image, its moved boxes, keypoints and masks when the call
    sent targets (see ``augsvc_client.targets``).
    """

    images: Any
    keys: Any
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    digest: str = ""
    labels: Any = None
    targets: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class StreamBatch:
    """One frame of a dataset stream.

    ``indices`` are dataset indices (what to look labels up by), ``position`` is the
    global epoch position of the batch's first sample, ``labels`` is None when the dataset
    has none. ``targets`` holds each sample's boxes, keypoints and mask when the dataset
    has them (``augsvc_client.targets``). A mixing stream also sends ``soft_targets``
    (N, num_classes) float32, ``lam * y + (1 - lam) * y_partner`` (label-smoothed),
    ``lam`` (float64, each image's own weight; 1.0 where it was not mixed) and
    ``partners`` (the dataset index each image was mixed with); ``labels`` stay the
    images' own labels. They are None otherwise.
    """

    images: Any
    indices: Any
    labels: Any
    position: int
    epoch: int
    batch: int = 0
    digest: str = ""
    targets: list[Any] | None = None
    soft_targets: Any = None
    lam: Any = None
    partners: Any = None

    def __len__(self) -> int:
        return len(self.indices)
