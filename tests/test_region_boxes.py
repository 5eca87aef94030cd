"""The source box each sample's first warp reads, pinned for pinned matrices: the
interpolation's taps plus a margin of two pixels on every side, clipped at the
image's edges, aligned to the pre-shrink's blocks. Pure integer-valued maths (matrices
whose inverses are exact), so the boxes are the same on every CPU; a margin one pixel
smaller, or a tap forgotten, moves a pinned edge."""

from __future__ import annotations

import numpy as np
import pytest

from augsvc.engine import compile_plan, plan_regions, source_boxes
from augsvc.maths import geometry
from augsvc.recipes import parse_recipe

SOURCE_HW = np.array([[100, 100]])


def box(matrix: np.ndarray, out_hw, *, mode="bilinear", padding="zeros", antialias=True):
    """(top, left, bottom, right) and the region's matrix for one sample."""
    regions = plan_regions(
        matrix, np.array([out_hw]), SOURCE_HW, mode=mode, padding_mode=padding, antialias=antialias
    )
    return tuple(regions.boxes[0].tolist()), regions.matrices[0], int(regions.factors[0])


#: A 10x10 output reading source x in [40.5, 49.5], y in [30.25, 39.25]: floor() is 40
#: and 49 across, 30 and 39 down; each side widened by the taps and the margin.
SHIFT = geometry.translation(np.array([-40.5]), np.array([-30.25]))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # top = 30 - 0 - 2, left = 40 - 0 - 2, bottom = 39 + 1 + 2 + 1, right = 49 + 1 + 2 + 1
        ("bilinear", (28, 38, 43, 53)),
        ("nearest", (28, 38, 43, 53)),
        # bicubic reads one more before and two after floor(x)
        ("bicubic", (27, 37, 44, 54)),
    ],
)
def test_a_shifted_window_reads_its_taps_and_the_margin(mode, expected):
    boxes, matrix, factor = box(SHIFT, (10, 10), mode=mode)
    assert factor == 1
    assert boxes == expected
    top, left = expected[:2]  # the region's matrix starts at the box's corner
    np.testing.assert_array_equal(
        matrix, geometry.translation(np.array([-40.5 + left]), np.array([-30.25 + top]))[0]
    )


def test_a_box_stops_at_the_edges_and_reflection_takes_the_axis_whole():
    near_corner = geometry.translation(np.array([-1.5]), np.array([-0.5]))
    # x in [1.5, 10.5]: from max(1 - 2, 0) to 10 + 1 + 2; y in [0.5, 9.5]: 0 to 9 + 3
    assert box(near_corner, (10, 10))[0] == (0, 0, 13, 14)
    assert box(near_corner, (10, 10), padding="border")[0] == (0, 0, 13, 14)
    assert box(near_corner, (10, 10), padding="reflection")[0] == (0, 0, 100, 100)
    assert box(SHIFT, (10, 10), padding="reflection")[0] == (28, 38, 43, 53)  # inside


def test_a_shrinking_warp_reads_whole_blocks_of_its_pre_shrink():
    """x -> (x - 20) / 4: pre-shrunk by 2, whose pixel p is source 2p + 0.5, so output
    o reads p = 2o + 9.75, from 9.75 to 27.75 for a 10-pixel output: blocks 9 - 2 to
    27 + 1 + 2, source pixels 14 to 62."""
    quarter = geometry.scaling(np.array([0.25]), np.array([0.25])) @ geometry.translation(
        np.array([-20.0]), np.array([-20.0])
    )
    boxes, _, factor = box(quarter, (10, 10))
    assert factor == 2
    assert boxes == (14, 14, 62, 62)
    assert box(quarter, (10, 10), antialias=False)[0] == (18, 18, 60, 60)  # x in [20, 56]


def test_a_recipes_centre_crop_reads_its_window_and_the_margin():
    """The engine's own draws: a 10x10 centre crop of a 100x100 image reads rows and
    columns 45 to 54, so its box is 43 to 58 (exclusive) with bilinear taps."""
    plan = compile_plan(parse_recipe({"ops": [{"op": "crop", "size": [10, 10]}]}))
    boxes = source_boxes(plan, 0, [0, 1], np.array([[100, 100]] * 2), [None, None],
                         np.array([[100, 100]] * 2))  # fmt: skip
    assert boxes.tolist() == [[43, 43, 58, 58]] * 2
