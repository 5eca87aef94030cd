"""A COCO annotations file checked, value by value, before any library sees it.

pycocotools is C: a polygon vertex at 1e9 makes it allocate gigabytes and crash the
process, an RLE whose counts overrun its image writes past its buffer, a compressed RLE
string that ends inside a count is read past its end. So everything a file declares is
checked here at registration, with the limits uploaded targets meet
(``codec/targets.py``: ``MAX_BOXES``, ``MAX_KEYPOINTS``, ``MAX_COORDINATE``) and the
server's ``AUGSVC_MAX_IMAGE_PIXELS``, and a bad value is a 422 naming the entry (its
index and id) and the field, e.g. ``annotations.annotations[7].segmentation[0]``.

Polygon vertices far outside their image are refused, not clipped: clipping each vertex
to the image changes the polygon's shape (its edges move), so a file whose coordinates
are that wrong (another image's size, pixels scaled twice) would train on silently wrong
masks. A margin of one image size on every side keeps the polygons real files have (a
vertex a pixel or two outside, where the annotator's click landed) and bounds the work
pycocotools does, with the length of the outline it draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from augsvc.codec.targets import MAX_BOXES, MAX_COORDINATE, MAX_KEYPOINTS
from augsvc.errors import FieldError

Loc = tuple[str | int, ...]
#: Polygons one annotation may have.
MAX_POLYGONS = 10_000
#: How many times an annotation's outline may go round its image: pycocotools draws
#: every edge at 5x, so the outline's length bounds its work and memory.
MAX_OUTLINE_LAPS = 64
#: Characters of one count of a compressed RLE string (5 bits each; a count < 2**32).
_MAX_RLE_DIGITS = 7


@dataclass(frozen=True)
class CocoImage:
    """An ``images`` entry, checked: where its annotations are found and its size."""

    id: int | str
    file_name: str
    height: int
    width: int


class CocoError(ValueError):
    """A bad value at ``loc`` in the file; the caller names the file and the entry."""

    def __init__(self, loc: Loc, msg: str) -> None:
        super().__init__(msg)
        self.field = FieldError(loc, msg)


def fail(loc: Loc, msg: str) -> CocoError:
    return CocoError(loc, msg)


def check_image(entry: Any, i: int, max_pixels: int) -> CocoImage:
    loc: Loc = ("images", i)
    if not isinstance(entry, dict):
        raise fail(loc, "an image entry is an object")
    ident = entry.get("id")
    if not is_id(ident):
        raise fail((*loc, "id"), "an image id is an integer or a string")
    name = entry.get("file_name")
    if not isinstance(name, str) or not name or "\x00" in name:
        raise fail((*loc, "file_name"), "a file_name is a non-empty string")
    height, width = (_size(entry.get(k), (*loc, k)) for k in ("height", "width"))
    if height * width > max_pixels:
        raise fail(
            (*loc, "height"),
            f"{width}x{height} is {width * height} pixels, more than an image may have "
            f"(AUGSVC_MAX_IMAGE_PIXELS = {max_pixels})",
        )
    return CocoImage(ident, name, height, width)


def is_id(value: Any) -> bool:
    return isinstance(value, str) or (_is_int(value) and -(2**63) <= value < 2**63)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _size(value: Any, loc: Loc) -> int:
    if not _is_int(value) or value < 1:
        raise fail(loc, f"a positive integer number of pixels, got {str(value)[:40]}")
    return value


def check_annotation(a: dict[str, Any], loc: Loc, image: CocoImage) -> int:
    """Check one annotation of ``image``; its number of keypoints."""
    bbox = _numbers(a.get("bbox"), (*loc, "bbox"), "a bbox [x, y, w, h]")
    if len(bbox) != 4:
        raise fail((*loc, "bbox"), f"a bbox is [x, y, w, h], got {len(bbox)} numbers")
    if bbox[2] < 0 or bbox[3] < 0:
        raise fail((*loc, "bbox"), "a bbox's width and height are not negative")
    category = a.get("category_id")
    if not _is_int(category) or not -(2**63) <= category < 2**63:
        raise fail((*loc, "category_id"), "a category_id is an integer")
    points = 0
    if a.get("keypoints"):
        flat = _numbers(a["keypoints"], (*loc, "keypoints"), "keypoints [x, y, v, ...]")
        if len(flat) % 3:
            raise fail((*loc, "keypoints"), "keypoints come in threes: x, y, v")
        points = len(flat) // 3
    segmentation = a.get("segmentation")
    if segmentation:
        check_segmentation(segmentation, (*loc, "segmentation"), image)
    return points


def _numbers(value: Any, loc: Loc, what: str) -> list[float]:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise fail(loc, f"expected {what}, a list of numbers")
    # The bound first: NaN fails it, and a 400-digit integer must never reach float().
    if not all(abs(v) <= MAX_COORDINATE and math.isfinite(v) for v in value):
        raise fail(loc, f"coordinates are finite numbers within ±{MAX_COORDINATE:g}")
    return [float(v) for v in value]


def check_segmentation(value: Any, loc: Loc, image: CocoImage) -> None:
    """Polygons (a list of ``[x0, y0, x1, y1, ...]``) or RLE (``{"size", "counts"}``)."""
    if isinstance(value, list):
        if len(value) > MAX_POLYGONS:
            raise fail(loc, f"at most {MAX_POLYGONS} polygons per annotation")
        outline = sum(_polygon(p, (*loc, k), image) for k, p in enumerate(value))
        bound = MAX_OUTLINE_LAPS * 2 * (image.width + image.height)
        if outline > bound:
            raise fail(loc, f"the polygons' outline is {outline:.0f} pixels long, "
                       f"more than {MAX_OUTLINE_LAPS} times round the image")  # fmt: skip
    elif isinstance(value, dict):
        _rle(value, loc, image)
    else:
        raise fail(loc, "a segmentation is a list of polygons or an RLE object")


def _polygon(value: Any, loc: Loc, image: CocoImage) -> float:
    """Check one polygon; the length of its outline (in pixels, as pycocotools walks it).
    Plain Python: a polygon is a few dozen numbers, below what numpy pays to start."""
    if not isinstance(value, list) or not all(type(v) in (int, float) for v in value):
        raise fail(loc, "a polygon is a list of numbers [x0, y0, x1, y1, ...]")
    if len(value) % 2 or len(value) < 6:
        raise fail(loc, f"a polygon has x, y pairs and at least 3 points, got {len(value)} numbers")
    xs, ys = value[0::2], value[1::2]
    w, h = image.width, image.height
    # NaN fails every comparison and infinity and 400-digit integers the bounds, so this
    # one test is the finiteness check too.
    if not (all(-w <= x <= 2 * w for x in xs) and all(-h <= y <= 2 * h for y in ys)):
        raise fail(loc, f"a vertex lies more than the image's own size outside it ({w}x{h}), "
                   "or is not a finite number")  # fmt: skip
    closed_x, closed_y = [*xs[1:], xs[0]], [*ys[1:], ys[0]]
    return float(sum(
        max(abs(x1 - x0), abs(y1 - y0))
        for x0, x1, y0, y1 in zip(xs, closed_x, ys, closed_y, strict=True)
    ))  # fmt: skip


def _rle(value: dict[str, Any], loc: Loc, image: CocoImage) -> None:
    size = value.get("size")
    if size != [image.height, image.width] or not all(_is_int(v) for v in size):
        raise fail((*loc, "size"), f"an RLE's size is its image's [height, width], "
                   f"[{image.height}, {image.width}], got {str(size)[:40]}")  # fmt: skip
    counts = value.get("counts")
    if isinstance(counts, str):
        runs = rle_string_counts(counts, (*loc, "counts"))
    elif isinstance(counts, list) and all(_is_int(c) and 0 <= c < 2**32 for c in counts):
        runs = counts
    else:
        raise fail((*loc, "counts"), "RLE counts are a list of non-negative integers or "
                   "COCO's compressed string")  # fmt: skip
    total = sum(runs)
    if total != image.height * image.width:
        raise fail((*loc, "counts"), f"RLE counts add up to {total} pixels, the image has "
                   f"{image.height * image.width} ({image.width}x{image.height})")  # fmt: skip


def rle_string_counts(text: str, loc: Loc) -> list[int]:
    """The runs of COCO's compressed RLE string, decoded as pycocotools' ``rleFrString``
    does, with every step it leaves unchecked checked: its alphabet ("0".."o"), a count
    that ends before the string does, counts of at most 32 bits, none negative."""
    counts: list[int] = []
    p, n = 0, len(text)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise fail(loc, "the compressed RLE string ends inside a count")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise fail(loc, f"character {text[p]!r} at {p} is not in a compressed RLE")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if k > _MAX_RLE_DIGITS:
                raise fail(
                    loc, f"a count of the compressed RLE is over {_MAX_RLE_DIGITS} characters"
                )
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        if not 0 <= x < 2**32:
            raise fail(loc, f"count {len(counts)} of the compressed RLE is {x}, not a run length")
        counts.append(x)
    return counts


def check_counts(boxes: int, points: int, loc: Loc) -> None:
    """An image's annotations within what an upload may carry."""
    if boxes > MAX_BOXES:
        raise fail(loc, f"at most {MAX_BOXES} annotations per image, got {boxes}")
    if boxes * points > MAX_KEYPOINTS:
        raise fail(loc, f"at most {MAX_KEYPOINTS} keypoints per image")
