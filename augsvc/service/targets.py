"""The targets of one augment request: read with the upload, moved with the samples,
written into the response (the moving itself is augsvc.targets.move)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from augsvc.codec.targets import (
    check_mask_sizes,
    decode_mask,
    encode_mask_png,
    mask_name,
    parse_targets,
    targets_json,
)
from augsvc.errors import FieldError, ValidationFailed
from augsvc.targets.types import ImageTargets, MovedTargets


class MaskPart(Protocol):
    data: bytearray

    @property
    def label(self) -> str: ...


def read_targets(
    raw: bytes | None,
    masks: Sequence[MaskPart],
    sizes: Sequence[tuple[int, int]],
    *,
    max_pixels: int,
) -> list[ImageTargets | None] | None:
    """The request's targets, one entry per image (None: the request has none).
    ``sizes`` are the images' (height, width) as decoded; masks must match them."""
    if raw is None and not masks:
        return None
    n = len(sizes)
    targets = parse_targets(raw, n) if raw is not None else [None] * n
    if masks:
        if len(masks) != n:
            raise ValidationFailed(
                f"{len(masks)} 'masks' parts for {n} images: send one mask per image, in "
                "image order, or none",
                errors=[FieldError(("body", "masks"), "one per image")],
            )
        decoded = []
        for i, part in enumerate(masks):
            data = bytes(part.data)
            part.data.clear()
            decoded.append(decode_mask(data, name=part.label, index=i, max_pixels=max_pixels))
        check_mask_sizes(decoded, sizes)
        targets = [
            ImageTargets(mask=m) if t is None else _with_mask(t, m)
            for t, m in zip(targets, decoded, strict=True)
        ]
    return targets


def _with_mask(t: ImageTargets, mask: torch.Tensor) -> ImageTargets:
    t.mask = mask
    return t


def zip_entries(moved: Sequence[MovedTargets | None]) -> list[tuple[str, bytes]]:
    """``targets.json`` and, per sample with a mask, its PNG."""
    files = [("targets.json", targets_json(moved))]
    for i, t in enumerate(moved):
        if t is not None and t.mask is not None:
            files.append((mask_name(i), encode_mask_png(t.mask)))
    return files
