"""The targets on the wire: the ``targets`` JSON part and ``masks`` files of a multipart
upload in, tensors (safetensors) or ``targets.json`` plus mask PNGs (zip) out.

Parsing checks everything a client can get wrong and names the field
(``body.targets[2].boxes[5]``), so a bad box is a 422 before any pixel is decoded.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from augsvc.documents import parse_document
from augsvc.errors import FieldError, ImageTooLarge, UndecodableImage, ValidationFailed
from augsvc.targets.boxes import BOX_FORMATS, to_xyxy
from augsvc.targets.types import ImageTargets, MovedTargets

#: Boxes (and keypoints) one image may carry: far above any dataset's, far below what
#: would let one request build millions of Python objects.
MAX_BOXES = 10_000
MAX_KEYPOINTS = 100_000
#: Coordinates beyond this are refused: far outside any image, and their moved values
#: could overflow to infinity.
MAX_COORDINATE = 1e7
_KEYS = {"boxes", "labels", "keypoints", "box_format"}
#: Lossless formats a mask may come in; Pillow tries no other plugin on user bytes.
MASK_FORMATS = ("PNG", "TIFF", "BMP", "GIF")
#: Pillow modes that are single-channel label maps, and the dtype each decodes to.
_MASK_MODES = {"1": torch.uint8, "L": torch.uint8, "P": torch.uint8, "I;16": torch.int32,
               "I;16B": torch.int32, "I;16L": torch.int32, "I": torch.int32}  # fmt: skip


def _fail(loc: tuple[str | int, ...], msg: str) -> ValidationFailed:
    path = FieldError(loc, msg).path
    return ValidationFailed(f"{path}: {msg}", errors=[FieldError(loc, msg)])


def _numbers(value: Any, loc: tuple[str | int, ...], what: str) -> list[float]:
    """The numbers of one box or point, each finite and within ±MAX_COORDINATE. The
    bounds are checked before any conversion: an integer of 400 digits (JSON has no
    limit) would make ``math.isfinite`` or ``float`` raise OverflowError."""
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise _fail(loc, f"expected {what}, a list of numbers")
    if not all(isinstance(v, int) or math.isfinite(v) for v in value):
        raise _fail(loc, "coordinates must be finite numbers (no NaN or infinity)")
    if any(abs(v) > MAX_COORDINATE for v in value):
        raise _fail(loc, f"coordinates must lie within ±{MAX_COORDINATE:g}")
    return [float(v) for v in value]


def _boxes(raw: Any, fmt: str, loc: tuple[str | int, ...]) -> np.ndarray:
    if not isinstance(raw, list):
        raise _fail(loc, "expected a list of boxes, each [a, b, c, d]")
    if len(raw) > MAX_BOXES:
        raise _fail(loc, f"at most {MAX_BOXES} boxes per image, got {len(raw)}")
    rows = []
    for j, box in enumerate(raw):
        values = _numbers(box, (*loc, j), f"a {fmt} box")
        if len(values) != 4:
            raise _fail((*loc, j), f"a {fmt} box has 4 numbers, got {len(values)}")
        rows.append(values)
    boxes = to_xyxy(np.array(rows, dtype=np.float64).reshape(-1, 4), fmt)  # type: ignore[arg-type]
    for j, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        if x2 < x1 or y2 < y1:
            what = ("x2 < x1" if x2 < x1 else "y2 < y1") if fmt == "xyxy" else "negative w or h"
            raise _fail((*loc, j), f"{what} in {raw[j]}")
    return boxes


def _keypoints(raw: Any, loc: tuple[str | int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``[[x, y(, v)], ...]`` (one instance) or ``[[[x, y(, v)], ...], ...]`` (one list per
    instance, all of one length) -> (I,P,2) points and (I,P) visibility (v > 0, as COCO's
    0 = not labelled)."""
    if not isinstance(raw, list):
        raise _fail(loc, "expected a list of [x, y] points or a list of such lists")
    nested = bool(raw) and isinstance(raw[0], list) and bool(raw[0]) and isinstance(raw[0][0], list)
    instances = raw if nested else [raw]
    points, seen = [], []
    count = None
    total = 0
    for i, instance in enumerate(instances):
        here = (*loc, i) if nested else loc
        if not isinstance(instance, list):
            raise _fail(here, "expected a list of [x, y] points")
        if count is not None and len(instance) != count:
            raise _fail(here, f"every instance has the same number of points ({count})")
        count = len(instance)
        total += count
        if total > MAX_KEYPOINTS:
            raise _fail(loc, f"at most {MAX_KEYPOINTS} keypoints per image")
        for j, point in enumerate(instance):
            values = _numbers(point, (*here, j), "a point [x, y] or [x, y, v]")
            if len(values) not in (2, 3):
                raise _fail(
                    (*here, j), f"a point is [x, y] or [x, y, v], got {len(values)} numbers"
                )
            points.append(values[:2])
            seen.append(values[2] > 0 if len(values) == 3 else True)
    shape = (len(instances), count or 0)
    return (
        np.array(points, dtype=np.float64).reshape(*shape, 2),
        np.array(seen, dtype=bool).reshape(shape),
    )


def _labels(raw: Any, count: int, loc: tuple[str | int, ...]) -> np.ndarray:
    if not isinstance(raw, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63 for v in raw
    ):
        raise _fail(loc, "expected a list of integer labels")
    if len(raw) != count:
        raise _fail(loc, f"one label per box: {count} boxes, {len(raw)} labels")
    return np.array(raw, dtype=np.int64)


def parse_image_targets(item: Any, loc: tuple[str | int, ...]) -> ImageTargets | None:
    """One image's object (``null``: no targets)."""
    if item is None:
        return None
    if not isinstance(item, dict):
        raise _fail(loc, "expected an object with boxes, labels, keypoints, box_format")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise _fail((*loc, unknown[0]), f"unknown field; expected some of {sorted(_KEYS)}")
    fmt = item.get("box_format", "xyxy")
    if fmt not in BOX_FORMATS:
        raise _fail((*loc, "box_format"), f"expected one of {list(BOX_FORMATS)}")
    out = ImageTargets()
    if item.get("boxes") is not None:
        out.boxes = _boxes(item["boxes"], fmt, (*loc, "boxes"))
    if item.get("labels") is not None:
        out.labels = _labels(item["labels"], len(out.boxes), (*loc, "labels"))
    if item.get("keypoints") is not None:
        out.keypoints, out.keypoint_visible = _keypoints(item["keypoints"], (*loc, "keypoints"))
    return out


def parse_targets(data: bytes, count: int) -> list[ImageTargets | None]:
    """The ``targets`` part: a JSON array with one entry per image, in image order."""
    loc: tuple[str | int, ...] = ("body", "targets")
    document = parse_document(data, "json", source="the 'targets' part", loc=loc)
    if not isinstance(document, list):
        raise _fail(loc, "expected a JSON array with one object (or null) per image")
    if len(document) != count:
        more = "more" if len(document) > count else "fewer"
        raise _fail(loc, f"{len(document)} entries for {count} images ({more} than images)")
    return [parse_image_targets(item, (*loc, i)) for i, item in enumerate(document)]


@dataclass(frozen=True)
class MaskHeader:
    """A ``masks`` file whose header was read and checked, none of its pixels decoded:
    its size and what each decoded pixel costs are known before any memory is spent."""

    data: bytes = field(repr=False)
    name: str
    index: int
    hw: tuple[int, int]
    itemsize: int  # bytes per decoded pixel: 1 (uint8 labels) or 4 (int32 labels)

    def decode(self) -> torch.Tensor:
        """(H,W) uint8 or int32 labels."""
        with _opened_mask(self.data, self.name, self.index) as image:
            dtype = _MASK_MODES[image.mode]
            array = np.array(image.convert("I") if dtype == torch.int32 else image)
        if array.dtype == bool:
            array = array.astype(np.uint8)
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        return tensor.to(dtype) if dtype == torch.uint8 else tensor.to(torch.int32)


@contextmanager
def _opened_mask(data: bytes, name: str, index: int) -> Iterator[Image.Image]:
    """The mask's image, header parsed and pixels not yet loaded; any Pillow failure on
    user bytes is the upload's fault (422 naming the part)."""
    try:
        with Image.open(io.BytesIO(data), formats=MASK_FORMATS) as image:
            yield image
    except (ImageTooLarge, ValidationFailed, MemoryError):
        raise
    except Exception as exc:
        raise UndecodableImage(
            f"mask {name!r} could not be decoded: {exc}",
            errors=[FieldError(("body", "masks", index), "not a decodable image")],
        ) from None


def probe_mask(data: bytes, *, name: str, index: int, max_pixels: int) -> MaskHeader:
    """A ``masks`` file's header: a single-channel label map (PNG, TIFF, BMP or GIF), 8 or
    16 bit, or a palette image whose indices are the labels."""
    loc: tuple[str | int, ...] = ("body", "masks", index)
    with _opened_mask(data, name, index) as image:
        if image.width * image.height > max_pixels:
            raise ImageTooLarge(
                f"mask {name!r} has {image.width * image.height} pixels; the limit is {max_pixels}"
            )
        if image.mode not in _MASK_MODES:
            raise _fail(loc, f"a mask is one channel (8/16-bit grey or palette), not {image.mode}")
        itemsize = 1 if _MASK_MODES[image.mode] == torch.uint8 else 4
        return MaskHeader(data, name, index, (image.height, image.width), itemsize)


def check_mask_sizes(masks: Sequence[tuple[int, int]], sizes: Sequence[tuple[int, int]]) -> None:
    """Each mask (H, W) must cover its image pixel for pixel (as decoded, EXIF turns
    applied); checked from headers, before either is decoded."""
    for i, (mask_hw, hw) in enumerate(zip(masks, sizes, strict=True)):
        if tuple(mask_hw) != tuple(hw):
            got = "x".join(map(str, mask_hw))
            raise _fail(
                ("body", "masks", i),
                f"mask {i} is {got} (HxW) but its image is {hw[0]}x{hw[1]}: "
                "a mask has its image's size",
            )


def targets_tensors(moved: Sequence[MovedTargets | None]) -> dict[str, torch.Tensor]:
    """The flat tensors of a safetensors response (see the README's wire contract)."""
    rows = [(i, t) for i, t in enumerate(moved) if t is not None]
    box_image = [np.full(len(t.box_index), i, dtype=np.int64) for i, t in rows]

    def cat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> torch.Tensor:
        array = np.concatenate(parts) if parts else np.zeros(shape, dtype=dtype)
        return torch.from_numpy(np.ascontiguousarray(array, dtype=dtype))

    out = {
        "targets.boxes": cat([t.boxes for _, t in rows], (0, 4), np.float32),
        "targets.box_image": cat(box_image, (0,), np.int64),
        "targets.box_index": cat([t.box_index for _, t in rows], (0,), np.int64),
        "targets.box_visibility": cat([t.visibility for _, t in rows], (0,), np.float32),
    }
    if any(t.labels is not None for _, t in rows):
        out["targets.labels"] = cat(
            [t.labels if t.labels is not None else np.full(len(t.box_index), -1) for _, t in rows],
            (0,),
            np.int64,
        )
    points = [(i, t.keypoints, t.keypoint_visible) for i, t in rows if t.keypoints.size]
    out["targets.keypoints"] = cat([p.reshape(-1, 2) for _, p, _ in points], (0, 2), np.float32)
    out["targets.keypoint_visible"] = cat([v.reshape(-1) for _, _, v in points], (0,), np.uint8)
    out["targets.keypoint_image"] = cat([np.full(v.size, i) for i, _, v in points], (0,), np.int64)
    out["targets.keypoint_instance"] = cat(
        [np.repeat(np.arange(v.shape[0]), v.shape[1]) for _, _, v in points], (0,), np.int64
    )
    out["targets.keypoint_index"] = cat(
        [np.tile(np.arange(v.shape[1]), v.shape[0]) for _, _, v in points], (0,), np.int64
    )
    masks = [t.mask for t in moved if t is not None and t.mask is not None]
    if masks:
        dtype = torch.uint8 if all(m.dtype == torch.uint8 for m in masks) else torch.int32
        out["targets.masks"] = torch.stack([m.to(dtype) for m in masks])[:, None]
    return out


def _round(values: np.ndarray) -> list[Any]:
    """float32 values as JSON: what the tensors carry, without float64's noise."""
    return np.asarray(values, dtype=np.float32).astype(np.float64).round(4).tolist()


def targets_json(moved: Sequence[MovedTargets | None]) -> bytes:
    """``targets.json`` of a zip response: one object (or null) per image."""
    items: list[dict[str, Any] | None] = []
    for i, t in enumerate(moved):
        if t is None:
            items.append(None)
            continue
        item: dict[str, Any] = {
            "boxes": _round(t.boxes),
            "box_index": t.box_index.tolist(),
            "visibility": _round(t.visibility),
        }
        if t.labels is not None:
            item["labels"] = t.labels.tolist()
        if t.keypoints.size:
            xyv = np.concatenate([t.keypoints, t.keypoint_visible[..., None]], axis=-1)
            item["keypoints"] = _round(xyv)
        if t.mask is not None:
            item["mask"] = mask_name(i)
        items.append(item)
    return json.dumps(items, separators=(",", ":")).encode()


def mask_name(index: int) -> str:
    """A zip response's entry for sample ``index``'s mask."""
    return f"masks/{index:06d}.png"


def encode_mask_png(mask: torch.Tensor) -> bytes:
    """An 8-bit grey PNG for labels up to 255, else a 16-bit one."""
    array = mask.cpu().numpy()
    image = (
        Image.fromarray(array.astype(np.uint8))
        if mask.dtype == torch.uint8
        else Image.fromarray(array.astype(np.uint16))
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _check_boxes_per_image(image: np.ndarray, count: int) -> None:
    """At most MAX_BOXES boxes per image, as a multipart ``targets`` part: a safetensors
    body is no way around the limit."""
    per_image = np.bincount(image.astype(np.int64), minlength=count)
    crowded = int(per_image.argmax()) if len(per_image) else 0
    if len(per_image) and per_image[crowded] > MAX_BOXES:
        got = int(per_image[crowded])
        raise _fail(
            ("boxes",), f"at most {MAX_BOXES} boxes per image, got {got} on image {crowded}"
        )


def targets_from_tensors(
    data: bytes | bytearray, count: int, size: tuple[int, int]
) -> list[ImageTargets | None] | None:
    """The targets of a safetensors body beside its ``images`` (N, C, H, W): ``boxes``
    (M, 5) float as [image, x1, y1, x2, y2] in source pixels, optional ``labels`` (M,)
    integers, optional ``masks`` (N, 1, H, W) integer label maps. None when it has none."""
    from augsvc.codec.batches import read_named_tensor

    boxes = read_named_tensor(data, "boxes", ("F32", "F64"))
    labels = read_named_tensor(data, "labels", ("I64", "I32"))
    masks = read_named_tensor(data, "masks", ("U8", "U16", "I16", "I32"))
    if boxes is None and masks is None:
        if labels is not None:
            raise _fail(("labels",), "labels need a 'boxes' tensor")
        return None
    out: list[ImageTargets | None] = [ImageTargets() for _ in range(count)]
    if boxes is not None:
        if boxes.ndim != 2 or boxes.shape[1] != 5:
            raise _fail(("boxes",), f"expected (M, 5) [image, x1, y1, x2, y2], got {boxes.shape}")
        if not np.isfinite(boxes).all():
            raise _fail(("boxes",), "coordinates must be finite numbers (no NaN or infinity)")
        if (np.abs(boxes) > MAX_COORDINATE).any():
            raise _fail(("boxes",), f"coordinates must lie within ±{MAX_COORDINATE:g}")
        image = boxes[:, 0]
        if ((image != np.round(image)) | (image < 0) | (image >= count)).any():
            raise _fail(("boxes",), f"column 0 is the image index, an integer in 0..{count - 1}")
        _check_boxes_per_image(image, count)
        xyxy = boxes[:, 1:].astype(np.float64)
        bad = np.flatnonzero((xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1]))
        if len(bad):
            raise _fail(("boxes", int(bad[0])), f"x2 < x1 or y2 < y1 in {xyxy[bad[0]].tolist()}")
        if labels is not None and labels.shape != (len(boxes),):
            raise _fail(("labels",), f"one label per box: ({len(boxes)},), got {labels.shape}")
        for i, t in enumerate(out):
            rows = np.flatnonzero(image == i)
            assert t is not None
            t.boxes = xyxy[rows]
            if labels is not None:
                t.labels = labels[rows].astype(np.int64)
    if masks is not None:
        if masks.shape != (count, 1, *size):
            raise _fail(
                ("masks",), f"expected (N, 1, H, W) = {(count, 1, *size)}, got {masks.shape}"
            )
        if masks.min(initial=0) < 0 or masks.max(initial=0) > 65535:
            raise _fail(("masks",), "mask labels must lie in 0..65535")
        dtype = torch.uint8 if masks.dtype == np.uint8 else torch.int32
        for t, mask in zip(out, masks[:, 0], strict=True):
            assert t is not None
            t.mask = torch.from_numpy(mask.astype(np.int32)).to(dtype)
    return out
