"""The checks a COCO file passes before pycocotools sees it, without a server: the safe
decoder of compressed RLE agrees with pycocotools on every string pycocotools writes,
and refuses, without crashing, every string it would misread."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc.datasets import DatasetSpec, open_source
from augsvc.datasets.coco_checks import CocoError, CocoImage, check_segmentation, rle_string_counts
from augsvc.datasets.source_base import SourceLimits
from augsvc.errors import ValidationFailed
from tests import dataset_files

coco_mask = pytest.importorskip("pycocotools.mask")


def _runs(mask: np.ndarray) -> list[int]:
    """Column-major run lengths, starting with zeros, as COCO counts them."""
    flat = mask.flatten(order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    runs = np.diff(bounds).tolist()
    return [0, *runs] if flat.size and flat[0] else runs


@settings(max_examples=200, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    density=st.floats(0, 1),
)
def test_compressed_rle_decodes_as_pycocotools_writes_it(h, w, seed, density):
    mask = (np.random.default_rng(seed).random((h, w)) < density).astype(np.uint8)
    rle = coco_mask.encode(np.asfortranarray(mask))
    counts = rle_string_counts(rle["counts"].decode(), ("counts",))
    assert counts == _runs(mask)
    assert sum(counts) == h * w
    image = CocoImage(1, "x.png", h, w)
    check_segmentation({"size": [h, w], "counts": rle["counts"].decode()}, ("s",), image)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_string_decodes_to_counts_or_is_refused(text):
    try:
        counts = rle_string_counts(text, ("counts",))
    except CocoError as err:
        assert err.field.loc == ("counts",)
    else:
        assert all(0 <= c < 2**32 for c in counts)


def test_a_polygon_out_by_a_billion_is_refused_not_rasterised():
    image = CocoImage(1, "x.png", 40, 50)
    with pytest.raises(CocoError, match="outside") as info:
        check_segmentation([[0, 0, 1e9, 0, 1e9, 1e9]], ("segmentation",), image)
    assert info.value.field.loc == ("segmentation", 0)
    check_segmentation([[-1, -1, 51, 0, 51, 41]], ("segmentation",), image)  # a click outside


def test_an_outline_that_winds_round_too_often_is_refused():
    image = CocoImage(1, "x.png", 40, 50)
    zigzag = [v for _ in range(2000) for v in (0, 0, 50, 40)]
    with pytest.raises(CocoError, match="outline"):
        check_segmentation([zigzag], ("segmentation",), image)


def test_declared_sizes_meet_the_servers_pixel_limit(tmp_path):
    spec = dataset_files.coco(tmp_path / "c", n=2)
    assert len(open_source(DatasetSpec(**spec), [tmp_path], limits=SourceLimits(2000))) == 2
    with pytest.raises(ValidationFailed, match="AUGSVC_MAX_IMAGE_PIXELS") as info:
        open_source(DatasetSpec(**spec), [tmp_path], limits=SourceLimits(1999))
    assert info.value.errors[0].loc == ("annotations", "images", 0, "height")
