"""A batch's targets through its samples' composed matrices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from augsvc.engine import AugmentResult, Plan, cpu_workers
from augsvc.errors import FieldError, ValidationFailed
from augsvc.recipes.targets import TargetOptions
from augsvc.targets import boxes as box_ops
from augsvc.targets.keypoints import move_keypoints
from augsvc.targets.masks import warp_mask
from augsvc.targets.occlusion import occluded_rectangles
from augsvc.targets.types import ImageTargets, MovedTargets


def check_flip_pairs(options: TargetOptions, targets: Sequence[ImageTargets | None]) -> None:
    """Every pair must name keypoints the images have: a pair past the end would
    silently swap nothing on some images and something on others."""
    counts = {t.keypoints.shape[1] for t in targets if t is not None and t.keypoints.size}
    for i, (a, b) in enumerate(options.flip_pairs):
        for count in counts:
            if max(a, b) >= count:
                raise ValidationFailed(
                    f"targets.flip_pairs[{i}] = [{a}, {b}] names a keypoint past the "
                    f"{count} each instance has",
                    errors=[FieldError(("recipe", "targets", "flip_pairs", i), "out of range")],
                )


def move_one(
    options: TargetOptions,
    matrix: np.ndarray,
    out_hw: tuple[int, int],
    targets: ImageTargets,
    *,
    padding_mode: str,
    occluders: np.ndarray | None = None,
) -> MovedTargets:
    """One sample: ``matrix`` is its composed forward matrix (pixel centres at integers,
    as the engine returns it) and ``out_hw`` its output size; ``occluders`` (R,4) xyxy
    output rectangles whose cover of a box stops counting as visible."""
    m = box_ops.continuous(matrix)
    h, w = out_hw
    moved, finite = box_ops.move_boxes(m, targets.boxes, options.box_method)
    clipped = box_ops.clip(moved, h, w)
    fraction = np.where(finite, box_ops.visibility(moved, clipped), 0.0)
    visible_area = box_ops.area(clipped)
    if occluders is not None and len(occluders):
        hidden = box_ops.occluded_area(clipped, occluders)
        full = box_ops.area(moved)
        fraction = np.where(full > 0, fraction - hidden / np.where(full > 0, full, 1.0), fraction)
        visible_area = visible_area - hidden
    keep = box_ops.survivors(
        fraction,
        visible_area,
        min_visibility=options.min_visibility,
        min_area=options.min_area,
    )
    kept = np.flatnonzero(keep)
    points, seen = move_keypoints(
        m, targets.keypoints, targets.keypoint_visible, out_hw, options.flip_pairs
    )
    mask = None
    if targets.mask is not None:
        mask = warp_mask(
            targets.mask,
            matrix,
            out_hw,
            padding_mode=padding_mode,
            ignore_index=options.ignore_index,
        )
    return MovedTargets(
        boxes=(clipped if options.clip else moved)[kept],
        box_index=kept.astype(np.int64),
        visibility=fraction[kept],
        labels=None if targets.labels is None else targets.labels[kept],
        keypoints=points,
        keypoint_visible=seen,
        mask=mask,
    )


def move_targets(
    options: TargetOptions,
    matrices: np.ndarray,
    out_hw: Sequence[tuple[int, int]],
    targets: Sequence[ImageTargets | None],
    *,
    padding_mode: str,
    occluders: Sequence[np.ndarray] | None = None,
) -> list[MovedTargets | None]:
    """Each sample's targets (None: it has none) through its own matrix (N,3,3) to its
    own output size: a function of the sample alone, like its pixels."""
    check_flip_pairs(options, targets)

    def one(i: int) -> MovedTargets | None:
        t = targets[i]
        if t is None:
            return None
        hidden = None if occluders is None else occluders[i]
        return move_one(
            options, matrices[i], tuple(out_hw[i]), t, padding_mode=padding_mode, occluders=hidden
        )

    masks = any(t is not None and t.mask is not None for t in targets)
    if not masks or torch.get_num_threads() == 1:  # as the engine: a worker runs serially
        return [one(i) for i in range(len(targets))]
    # Mask warps run on the engine's single-threaded CPU workers, as its chunks do:
    # intra-op threads over one small mask cost more than they save under contention.
    return list(cpu_workers().map(one, range(len(targets))))


def out_sizes(result: AugmentResult) -> list[tuple[int, int]]:
    """Each sample's output (H, W), whether the batch came back as one tensor or a list."""
    images = result.images
    if isinstance(images, torch.Tensor):
        return [(int(images.shape[-2]), int(images.shape[-1]))] * images.shape[0]
    return [(int(img.shape[-2]), int(img.shape[-1])) for img in images]


def move_batch(
    plan: Plan, result: AugmentResult, targets: Sequence[ImageTargets | None]
) -> list[MovedTargets | None]:
    """Each sample's targets through the matrix its pixels went through, under the
    recipe's target options and padding mode."""
    options = plan.recipe.target_options
    return move_targets(
        options,
        np.asarray(result.params["matrix"]),
        out_sizes(result),
        targets,
        padding_mode=plan.recipe.output.padding_mode,
        occluders=(
            occluded_rectangles(plan, result.params, len(result.keys))
            if options.erasing_counts_occlusion
            else None
        ),
    )
