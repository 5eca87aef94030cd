"""Sources whose samples carry targets: COCO (boxes, category ids, keypoints, instance
masks) and paired image/mask folders (semantic segmentation).

Each reads a sample's image like the other sources and, with ``read_targets``, its
targets in source pixels, which a stream frame moves with the sample. Indexing reads
the annotations once; masks are rasterised (COCO) or read (paired) per sample, when it
is streamed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from augsvc.codec.targets import check_mask_sizes, probe_mask
from augsvc.datasets import coco_checks
from augsvc.datasets.coco_checks import CocoError, CocoImage
from augsvc.datasets.local_sources import check_folder, images_in, read_local, relative
from augsvc.datasets.paths import confine, inside
from augsvc.datasets.source_base import (
    REGISTER_AGAIN,
    Sample,
    Source,
    SourceLimits,
    sample_name,
)
from augsvc.datasets.spec import DatasetSpec
from augsvc.documents import parse_document
from augsvc.errors import FieldError, PathNotAllowed, SampleUnreadable, ValidationFailed
from augsvc.targets.types import ImageTargets

#: Largest COCO file read (COCO 2017 train instances is about 450 MB).
MAX_ANNOTATION_BYTES = 2 * 1024**3
#: Pixels above which a paired mask is refused.
MAX_MASK_PIXELS = 2**28


@dataclass(frozen=True)
class _CocoImage:
    path: Path
    name: str  # its file_name: the path relative to the dataset's folder
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
    root: Path  # the images' folder
    annotations: Path
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
        data = read_local(image.path, index, self.root, self.roots)
        return data, None, sample_name(index, image.name)

    def check(self) -> None:
        check_folder(self.root, self.spec)
        if not self.annotations.is_file():
            raise SampleUnreadable(
                f"dataset {self.spec.path!r}: its annotations {self.spec.annotations!r} are "
                "gone; " + REGISTER_AGAIN
            )

    def read_targets(self, index: int, image_hw: tuple[int, int]) -> ImageTargets:
        image = self.images[index]
        if (image.height, image.width) != tuple(image_hw):
            raise ValidationFailed(
                f"sample {index} ({image.name!r}): the annotations declare it "
                f"{image.width}x{image.height}, but the file is {image_hw[1]}x{image_hw[0]}; "
                "fix its width and height in the COCO file",
                errors=[FieldError(("annotations", "images", image.name), "size mismatch")],
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
    """The annotations document, read as any user document is: a regular file under a
    size limit, parsed under the nesting limit (measured before the parser recurses)."""
    info = path.stat()
    if not path.is_file():
        raise ValidationFailed(f"annotations {shown!r} are not a regular file")
    if info.st_size > MAX_ANNOTATION_BYTES:
        raise ValidationFailed(
            f"annotations {shown!r} are larger than {MAX_ANNOTATION_BYTES} bytes"
        )
    document = parse_document(
        path.read_bytes(), "json", source=f"annotations {shown!r}", loc=("annotations",)
    )
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise ValidationFailed(f"annotations {shown!r}: not a COCO file (no 'images' list)")
    for key in ("annotations", "categories"):
        if not isinstance(document.get(key) or [], list):
            raise ValidationFailed(
                f"annotations {shown!r}: {key!r} is not a list",
                errors=[FieldError(("annotations", key), "expected a list")],
            )
    return document


def open_coco(
    spec: DatasetSpec, folder: Path, roots: Sequence[Path], limits: SourceLimits
) -> CocoSource:
    """Index a COCO dataset, every value of its annotations checked first
    (datasets/coco_checks.py): pycocotools sees nothing unchecked."""
    _check_folder(spec, folder)
    assert spec.annotations is not None
    shown = spec.annotations[:200]
    annotations = confine(spec.annotations, roots)
    document = _load_coco(annotations, shown)
    try:
        checked = _checked_images(document["images"], limits)
        by_image, points = _checked_annotations(document.get("annotations") or [], checked)
        classes = _classes(document.get("categories") or [])
    except CocoError as err:
        raise _named(err, shown, document) from None
    images = []
    for image in sorted(checked.values(), key=lambda e: _id_order(e.id)):
        path = folder / image.file_name
        if not inside(path, roots):
            raise PathNotAllowed(f"{image.file_name!r} is outside the data roots")
        if not path.is_file():
            raise ValidationFailed(f"{image.file_name!r} is not in {spec.path!r}")
        anns = tuple(by_image.get(image.id, []))
        images.append(_CocoImage(path, image.file_name, image.height, image.width, anns))
    return CocoSource(spec, folder, annotations, images, points, classes, roots)


def _checked_images(entries: list[Any], limits: SourceLimits) -> dict[int | str, CocoImage]:
    checked: dict[int | str, CocoImage] = {}
    for i, entry in enumerate(entries):
        image = coco_checks.check_image(entry, i, limits.max_image_pixels)
        if image.id in checked:
            raise coco_checks.fail(("images", i, "id"), f"image id {image.id!r} appears twice")
        checked[image.id] = image
    return checked


def _checked_annotations(
    entries: list[Any], images: dict[int | str, CocoImage]
) -> tuple[dict[int | str, list[dict[str, Any]]], int]:
    """The annotations of each image, checked against it, and the points per instance.
    Annotations of an image the file does not list are never read, and left out."""
    by_image: dict[int | str, list[dict[str, Any]]] = {}
    points = 0
    for j, a in enumerate(entries):
        loc: tuple[str | int, ...] = ("annotations", j)
        if not isinstance(a, dict):
            raise coco_checks.fail(loc, "an annotation is an object")
        ident = a.get("image_id")
        image = images.get(ident) if isinstance(ident, int | str) else None
        if image is None:
            continue
        count = coco_checks.check_annotation(a, loc, image)
        if count and points and count != points:
            raise coco_checks.fail((*loc, "keypoints"), f"{count} keypoints, others have {points}")
        points = count or points
        anns = by_image.setdefault(image.id, [])
        anns.append(a)
        coco_checks.check_counts(len(anns), points, loc)
    return by_image, points


def _classes(categories: list[Any]) -> list[str] | None:
    for k, c in enumerate(categories):
        if not isinstance(c, dict) or not coco_checks.is_id(c.get("id")):
            raise coco_checks.fail(("categories", k), "a category is an object with an id")
    ordered = sorted(categories, key=lambda c: _id_order(c["id"]))
    return [str(c.get("name", c["id"]))[:200] for c in ordered] or None


def _id_order(ident: int | str) -> tuple[bool, int | str]:
    """Integer ids in order, then string ids (a file may mix them)."""
    return (isinstance(ident, str), ident)


def _named(err: CocoError, shown: str, document: dict[str, Any]) -> ValidationFailed:
    """The check's error as a 422 naming the file, the entry (with its id) and the field."""
    field = err.field
    loc = field.loc
    entry = ""
    if len(loc) >= 2 and isinstance(loc[1], int):
        raw = document.get(str(loc[0])) or []
        ident = raw[loc[1]].get("id") if isinstance(raw[loc[1]], dict) else None
        entry = f" (id {str(ident)[:40]})" if ident is not None else ""
    path = FieldError(loc, field.msg).path
    return ValidationFailed(
        f"annotations {shown!r}: {path}{entry}: {field.msg}",
        errors=[FieldError(("annotations", *loc), field.msg)],
    )


@dataclass
class PairedSource(Source):
    """``images/x.jpg`` with ``masks/x.png``: a label map per image, matched by stem."""

    spec: DatasetSpec
    root: Path  # holds images/ and masks/
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
        path = self.files[index]
        data = read_local(path, index, self.root, self.roots)
        return data, None, sample_name(index, relative(path, self.root))

    def check(self) -> None:
        check_folder(self.root / "images", self.spec)
        check_folder(self.root / "masks", self.spec)

    def read_targets(self, index: int, image_hw: tuple[int, int]) -> ImageTargets:
        path = self.masks[index]
        shown = relative(path, self.root)
        data = read_local(path, index, self.root, self.roots)
        name = sample_name(index, shown)
        header = probe_mask(data, name=name, index=0, max_pixels=MAX_MASK_PIXELS)
        check_mask_sizes([header.hw], [image_hw])  # before a pixel of it is decoded
        return ImageTargets(mask=header.decode())


def open_paired(
    spec: DatasetSpec, folder: Path, roots: Sequence[Path], _limits: SourceLimits
) -> PairedSource:
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
    return PairedSource(spec, folder, files, [stems[f.stem] for f in files], roots)


def _check_folder(spec: DatasetSpec, path: Path) -> None:
    if not path.is_dir():
        raise ValidationFailed(f"dataset path {spec.path!r} is not a folder")
