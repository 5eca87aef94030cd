"""Targets (boxes, keypoints, masks) sent with images and read back, per image.

Each image's targets are a mapping with any of ``boxes``, ``labels``, ``keypoints`` and
``masks`` (or None for an image without any). Values may be lists, numpy arrays, torch
tensors or torchvision ``tv_tensors``:

- ``boxes``: (B, 4) in ``box_format`` (``xyxy`` by default, ``xywh``, ``cxcywh``), or a
  ``BoundingBoxes`` in any of those formats (its own format is used);
- ``labels``: (B,) integers;
- ``keypoints``: (P, 2) or (I, P, 2) points, optionally with a third column v (0 = not
  labelled), or a ``KeyPoints``;
- ``masks``: one (H, W) or (1, H, W) integer label map, or (N, H, W) booleans, one per
  instance (they must not overlap: they travel as one label map, instance i as i + 1).

What comes back has the same kinds: ``tv_tensors`` when the request used them (boxes
in the format they were given, masks as instance masks when given so), numpy otherwise.
Every image also gets ``box_index`` (which input box each surviving box is),
``box_visibility`` and ``keypoint_visible``. Coordinates are continuous pixels: pixel
(i, j) covers [j, j+1) x [i, i+1), as COCO and torchvision use them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arrays import Output, convert

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
_KNOWN = {"boxes", "labels", "keypoints", "masks", "box_format"}


@dataclass
class _Kinds:
    """What one image's targets were given as, so the answer comes back the same way."""

    box_format: str = "xyxy"
    tv_boxes: bool = False
    tv_keypoints: bool = False
    tv_mask: bool = False
    instance_masks: int = 0  # N when (N, H, W) instance masks were given
    mask_channel: bool = False  # a (1, H, W) label map


@dataclass
class TargetsPayload:
    """The multipart parts carrying targets, and how to read the answer back."""

    targets_json: str
    mask_files: list[tuple[str, tuple[str, bytes, str]]]
    kinds: list[_Kinds | None] = field(default_factory=list)


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _tv_name(value: Any) -> str:
    return type(value).__name__ if type(value).__module__.startswith("torchvision") else ""


def _box_format(value: Any, given: str) -> tuple[str, bool]:
    if _tv_name(value) != "BoundingBoxes":
        return given, False
    name = str(getattr(value.format, "name", value.format)).lower()
    if name not in BOX_FORMATS:
        raise ValueError(f"BoundingBoxes in format {name!r}: send xyxy, xywh or cxcywh")
    return name, True


def _mask_png(mask: np.ndarray) -> bytes:
    from PIL import Image

    if mask.min(initial=0) < 0 or mask.max(initial=0) > 65535:
        raise ValueError("mask labels must lie in 0..65535")
    if mask.max(initial=0) <= 255:
        image = Image.fromarray(mask.astype(np.uint8))
    else:
        image = Image.fromarray(mask.astype(np.uint16))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _label_map(masks: Any, kinds: _Kinds) -> np.ndarray:
    kinds.tv_mask = _tv_name(masks) == "Mask"
    array = _array(masks)
    if array.ndim == 2:
        return array
    if array.ndim != 3:
        raise ValueError(f"masks must be (H, W), (1, H, W) or (N, H, W), got {array.shape}")
    if array.dtype == np.bool_ or (len(array) > 1 and array.max(initial=0) <= 1):
        if (array.astype(np.int64).sum(axis=0) > 1).any():
            raise ValueError("instance masks overlap: send one label map (H, W) instead")
        kinds.instance_masks = len(array)
        labels = np.arange(1, len(array) + 1).reshape(-1, 1, 1)
        return (array.astype(np.int64) * labels).sum(axis=0)
    if len(array) != 1:
        raise ValueError("(N, H, W) masks must be boolean instance masks")
    kinds.mask_channel = True
    return array[0]


def _one(item: Any, index: int) -> tuple[dict[str, Any] | None, np.ndarray | None, _Kinds | None]:
    if item is None:
        return None, None, None
    if not isinstance(item, Mapping):
        raise TypeError(f"targets[{index}]: expected a mapping (boxes, labels, ...) or None")
    unknown = sorted(set(item) - _KNOWN)
    if unknown:
        raise ValueError(f"targets[{index}]: unknown key {unknown[0]!r}; expected {sorted(_KNOWN)}")
    kinds = _Kinds()
    entry: dict[str, Any] = {}
    if item.get("boxes") is not None:
        fmt, kinds.tv_boxes = _box_format(item["boxes"], item.get("box_format", "xyxy"))
        kinds.box_format = fmt
        entry["boxes"] = _array(item["boxes"]).astype(np.float64).reshape(-1, 4).tolist()
        entry["box_format"] = fmt
    if item.get("labels") is not None:
        entry["labels"] = [int(v) for v in _array(item["labels"]).reshape(-1)]
    if item.get("keypoints") is not None:
        kinds.tv_keypoints = _tv_name(item["keypoints"]) == "KeyPoints"
        entry["keypoints"] = _array(item["keypoints"]).astype(np.float64).tolist()
    mask = None
    if item.get("masks") is not None:
        mask = _label_map(item["masks"], kinds)
    return entry, mask, kinds


def encode_targets(targets: Sequence[Any], count: int) -> TargetsPayload:
    """The ``targets`` JSON part and ``masks`` files for ``count`` images."""
    if len(targets) != count:
        raise ValueError(f"{len(targets)} targets for {count} images: give one per image")
    entries, masks, kinds = [], [], []
    for i, item in enumerate(targets):
        entry, mask, kind = _one(item, i)
        entries.append(entry)
        masks.append(mask)
        kinds.append(kind)
    files = []
    if any(m is not None for m in masks):
        if any(m is None for m in masks):
            raise ValueError("masks: give one for every image or for none")
        files = [
            ("masks", (f"mask{i:06d}.png", _mask_png(m), "image/png"))
            for i, m in enumerate(masks)
            if m is not None
        ]
    text = json.dumps(entries, separators=(",", ":"), allow_nan=False)
    return TargetsPayload(text, files, kinds)


def _from_xyxy(boxes: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "xywh":
        return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    if fmt == "cxcywh":
        return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], 1)
    return boxes


def _select(tensors: Mapping[str, np.ndarray], name: str, rows: np.ndarray) -> np.ndarray | None:
    value = tensors.get(name)
    return None if value is None else value[rows]


def decode_targets(
    tensors: Mapping[str, np.ndarray],
    kinds: Sequence[_Kinds | None],
    out_hw: tuple[int, int],
    output: Output,
) -> list[dict[str, Any] | None]:
    """Per image, the answer's ``targets.*`` tensors (numpy) in the kinds they were sent."""
    box_image = tensors["targets.box_image"]
    point_image = tensors["targets.keypoint_image"]
    masks = tensors.get("targets.masks")
    out: list[dict[str, Any] | None] = []
    for i, kind in enumerate(kinds):
        if kind is None:
            out.append(None)
            continue
        rows = np.flatnonzero(box_image == i)
        boxes = _from_xyxy(tensors["targets.boxes"][rows].astype(np.float32), kind.box_format)
        item: dict[str, Any] = {
            "boxes": boxes,
            "box_index": tensors["targets.box_index"][rows],
            "box_visibility": tensors["targets.box_visibility"][rows],
        }
        labels = _select(tensors, "targets.labels", rows)
        if labels is not None:
            item["labels"] = labels
        points = np.flatnonzero(point_image == i)
        if len(points):
            instances = int(tensors["targets.keypoint_instance"][points].max()) + 1
            shape = (instances, len(points) // instances)
            item["keypoints"] = tensors["targets.keypoints"][points].reshape(*shape, 2)
            item["keypoint_visible"] = tensors["targets.keypoint_visible"][points].reshape(shape)
        if masks is not None:
            mask = masks[i, 0]
            if kind.instance_masks:
                ids = np.arange(1, kind.instance_masks + 1).reshape(-1, 1, 1)
                mask = mask[None] == ids
            elif kind.mask_channel:
                mask = mask[None]
            item["masks"] = mask
        out.append(_as_kinds(item, kind, out_hw, output))
    return out


def _as_kinds(
    item: dict[str, Any], kind: _Kinds, out_hw: tuple[int, int], output: Output
) -> dict[str, Any]:
    """numpy, torch, or torchvision's tv_tensors where the request used them."""
    wants_tv = kind.tv_boxes or kind.tv_keypoints or kind.tv_mask
    if output == "numpy" and not wants_tv:
        return item
    converted = {name: convert(np.ascontiguousarray(v), "torch") for name, v in item.items()}
    if not wants_tv:
        return converted
    from torchvision import tv_tensors

    if kind.tv_boxes:
        converted["boxes"] = tv_tensors.BoundingBoxes(
            converted["boxes"], format=kind.box_format.upper(), canvas_size=out_hw
        )
    if kind.tv_keypoints and "keypoints" in converted:
        converted["keypoints"] = tv_tensors.KeyPoints(converted["keypoints"], canvas_size=out_hw)
    if kind.tv_mask and "masks" in converted:
        converted["masks"] = tv_tensors.Mask(converted["masks"])
    return converted


def frame_targets(tensors: Mapping[str, np.ndarray], output: Output) -> list[dict[str, Any] | None]:
    """Per sample, the targets of a stream frame (numpy, or torch tensors)."""
    count = len(tensors["images"])
    out_hw = (int(tensors["images"].shape[-2]), int(tensors["images"].shape[-1]))
    return decode_targets(tensors, [_Kinds()] * count, out_hw, output)
