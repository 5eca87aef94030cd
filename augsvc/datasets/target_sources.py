"""Sources whose samples carry targets: COCO (boxes, category ids, keypoints, instance
masks) and paired image/mask folders (semantic segmentation).

Each reads a sample's image like the other sources and, with ``read_targets``, its
targets in source pixels, which a stream frame moves with the sample. Indexing reads
the annotations once; masks are rasterised (COCO) or read (paired) per sample, when it
is streamed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from augsvc.codec.targets import check_mask_sizes, probe_mask
from augsvc.datasets.local_sources import images_in
from augsvc.datasets.paths import confine, inside
from augsvc.datasets.source_base import Sample, Source
from augsvc.datasets.spec import DatasetSpec
from augsvc.errors import FieldError, PathNotAllowed, ValidationFailed
from augsvc.targets.types import ImageTargets

#: Largest COCO file read (COCO 2017 train instances is about 450 MB).
MAX_ANNOTATION_BYTES = 2 * 1024**3
#: Pixels above which a paired mask is refused.
MAX_MASK_PIXELS = 2**28


@dataclass(frozen=True)
class _CocoImage:
    path: Path
    height: int
    width: int
    anns: tuple[dict[str, Any], ...]


@dataclass
class CocoSource(Source):
    """Images in COCO's order (by image id); labels are None (the targets carry the
    category ids). A sample's mask is an instance map: annotation i of the image (its
    ``box_index`` i) is label i + 1, 0 is background; a later annotation wins where
    two overlap."""

    spec: DatasetSpec
    images: list[_CocoImage]
    keypoints: int  # points per instance (0: no keypoints in the file)
    classes: list[str] | None
    roots: Sequence[Path]
    has_targets: ClassVar[bool] = True

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labelled(self) -> bool:
        return False  # category ids come per box, with the targets

    def read(self, index: int) -> Sample:
        image = self.images[index]
        if not inside(image.path, self.roots):
            raise PathNotAllowed(f"{image.path.name!r} now resolves outside the data roots")
        return image.path.read_bytes(), None, image.path.name

    def read_targets(self, index: int, image_hw: tuple[int, int]) -> ImageTargets:
        image = self.images[index]
        if (image.height, image.width) != tuple(image_hw):
            raise ValidationFailed(
                f"sample {index} ({image.path.name!r}): the annotations declare it "
                f"{image.width}x{image.height}, but the file is {image_hw[1]}x{image_hw[0]}; "
                "fix its width and height in the COCO file",
                errors=[FieldError(("annotations", "images", image.path.name), "size mismatch")],
            )
        anns = image.anns
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        out = ImageTargets(
            boxes=boxes, labels=np.array([int(a["category_id"]) for a in anns], dtype=np.int64)
        )
        if self.keypoints:
            flat = np.zeros((len(anns), self.keypoints, 3))
            for i, a in enumerate(anns):
                if a.get("keypoints"):
                    flat[i] = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
            out.keypoints, out.keypoint_visible = flat[..., :2], flat[..., 2] > 0
        out.mask = _instance_map(anns, image.height, image.width)
        return out


def _instance_map(anns: Sequence[dict[str, Any]], height: int, width: int) -> torch.Tensor:
    """COCO polygons and RLE (compressed or not) rasterised by pycocotools, as COCO's
    own ``annToMask`` does."""
    from pycocotools import mask as coco_mask  # the coco extra

    labels = np.zeros((height, width), dtype=np.int32)
    for i, a in enumerate(anns):
        segmentation = a.get("segmentation")
        if not segmentation:
            continue
        if isinstance(segmentation, list):  # polygons
            rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
            rle = coco_mask.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
        labels[coco_mask.decode(rle).astype(bool)] = i + 1
    dtype = torch.uint8 if len(anns) < 256 else torch.int32
    return torch.from_numpy(labels).to(dtype)


def _load_coco(path: Path, shown: str) -> dict[str, Any]:
    if path.stat().st_size > MAX_ANNOTATION_BYTES:
        raise ValidationFailed(
            f"annotations {shown!r} are larger than {MAX_ANNOTATION_BYTES} bytes"
        )
    try:
        document = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"annotations {shown!r} are not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise ValidationFailed(f"annotations {shown!r}: not a COCO file (no 'images' list)")
    return document


def open_coco(spec: DatasetSpec, folder: Path, roots: Sequence[Path]) -> CocoSource:
    _check_folder(spec, folder)
    assert spec.annotations is not None
    shown = spec.annotations[:200]
    document = _load_coco(confine(spec.annotations, roots), shown)
    by_image: dict[Any, list[dict[str, Any]]] = {}
    points = 0
    for a in document.get("annotations") or []:
        if not isinstance(a, dict) or not isinstance(a.get("bbox"), list) or len(a["bbox"]) != 4:
            raise ValidationFailed(f"annotations {shown!r}: an annotation without a bbox")
        by_image.setdefault(a.get("image_id"), []).append(a)
        if a.get("keypoints"):
            count = len(a["keypoints"]) // 3
            if points and count != points:
                raise ValidationFailed(f"annotations {shown!r}: instances differ in keypoints")
            points = count
    images = []
    for entry in sorted(document["images"], key=lambda e: e.get("id", 0)):
        path = folder / str(entry.get("file_name", ""))
        if not inside(path, roots):
            raise PathNotAllowed(f"{entry.get('file_name')!r} is outside the data roots")
        if not path.is_file():
            raise ValidationFailed(f"{entry.get('file_name')!r} is not in {spec.path!r}")
        anns = tuple(by_image.get(entry.get("id"), []))
        images.append(_CocoImage(path, int(entry["height"]), int(entry["width"]), anns))
    categories = sorted(document.get("categories") or [], key=lambda c: c.get("id", 0))
    classes = [str(c.get("name", c.get("id"))) for c in categories] or None
    return CocoSource(spec, images, points, classes, roots)


@dataclass
class PairedSource(Source):
    """``images/x.jpg`` with ``masks/x.png``: a label map per image, matched by stem."""

    spec: DatasetSpec
    files: list[Path]
    masks: list[Path]
    roots: Sequence[Path]
    classes: list[str] | None = None
    has_targets: ClassVar[bool] = True

    def __len__(self) -> int:
        return len(self.files)

    @property
    def labelled(self) -> bool:
        return False  # a label per pixel, in the mask

    def read(self, index: int) -> Sample:
        for path in (self.files[index], self.masks[index]):
            if not inside(path, self.roots):
                raise PathNotAllowed(f"{path.name!r} now resolves outside the data roots")
        return self.files[index].read_bytes(), None, self.files[index].name

    def read_targets(self, index: int, image_hw: tuple[int, int]) -> ImageTargets:
        path = self.masks[index]
        if not inside(path, self.roots):
            raise PathNotAllowed(f"{path.name!r} now resolves outside the data roots")
        header = probe_mask(path.read_bytes(), name=path.name, index=0, max_pixels=MAX_MASK_PIXELS)
        check_mask_sizes([header.hw], [image_hw])  # before a pixel of it is decoded
        return ImageTargets(mask=header.decode())


def open_paired(spec: DatasetSpec, folder: Path, roots: Sequence[Path]) -> PairedSource:
    _check_folder(spec, folder)
    if not (folder / "images").is_dir() or not (folder / "masks").is_dir():
        raise ValidationFailed(f"dataset path {spec.path!r} must hold images/ and masks/")
    files = images_in(folder / "images", roots)
    stems: dict[str, Path] = {}
    for p in images_in(folder / "masks", roots):
        stems.setdefault(p.stem, p)
    missing = [f.name for f in files if f.stem not in stems]
    if missing:
        raise ValidationFailed(
            f"dataset {spec.path!r}: {len(missing)} images have no mask of the same stem "
            f"in masks/ (first: {missing[0]!r})"
        )
    return PairedSource(spec, files, [stems[f.stem] for f in files], roots)


def _check_folder(spec: DatasetSpec, path: Path) -> None:
    if not path.is_dir():
        raise ValidationFailed(f"dataset path {spec.path!r} is not a folder")
