"""Targets on the SDK side: what is sent for each kind of input, and per-image answers
read back from the flat tensors (numpy only; tv_tensors are tested against a server)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from augsvc_client.targets import decode_targets, encode_targets


def test_lists_and_arrays_become_the_json_part():
    payload = encode_targets(
        [{"boxes": np.array([[1, 2, 3, 4]]), "labels": [7], "box_format": "xywh",
          "keypoints": [[[1, 2, 2], [3, 4, 0]]]}, None],
        2,
    )  # fmt: skip
    assert json.loads(payload.targets_json) == [
        {"boxes": [[1.0, 2.0, 3.0, 4.0]], "box_format": "xywh", "labels": [7],
         "keypoints": [[[1.0, 2.0, 2.0], [3.0, 4.0, 0.0]]]},
        None,
    ]  # fmt: skip
    assert payload.mask_files == []


def test_instance_masks_travel_as_one_label_map():
    pytest.importorskip("PIL")
    from PIL import Image

    masks = np.zeros((2, 4, 5), dtype=bool)
    masks[0, 0, :2] = True
    masks[1, 3, 4] = True
    payload = encode_targets([{"masks": masks}], 1)
    ((name, (_, data, kind)),) = payload.mask_files
    assert name == "masks" and kind == "image/png"
    label_map = np.array(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(label_map, masks[0] * 1 + masks[1] * 2)
    masks[1, 0, 0] = True
    with pytest.raises(ValueError, match="overlap"):
        encode_targets([{"masks": masks}], 1)


@pytest.mark.parametrize(
    ("targets", "count", "words"),
    [
        ([{}], 2, "one per image"),
        ([{"boxes": [[0, 0, 1, 1]], "colour": 1}], 1, "unknown key"),
        ([[0, 0, 1, 1]], 1, "mapping"),
        ([{"boxes": [[0, 0, 1, float("nan")]]}], 1, "JSON compliant"),
    ],
)
def test_mistakes_are_caught_before_sending(targets, count, words):
    with pytest.raises((ValueError, TypeError), match=words):
        encode_targets(targets, count)


def test_answers_are_split_per_image_and_return_in_the_given_format():
    payload = encode_targets([{"boxes": [[0, 0, 4, 4]], "box_format": "cxcywh"}, None, {}], 3)
    tensors = {
        "targets.boxes": np.array([[2, 2, 6, 8], [0, 0, 1, 1]], dtype=np.float32),
        "targets.box_image": np.array([0, 2]),
        "targets.box_index": np.array([0, 3]),
        "targets.box_visibility": np.array([1.0, 0.5], dtype=np.float32),
        "targets.keypoints": np.zeros((0, 2), dtype=np.float32),
        "targets.keypoint_visible": np.zeros(0, dtype=np.uint8),
        "targets.keypoint_image": np.zeros(0, dtype=np.int64),
        "targets.keypoint_instance": np.zeros(0, dtype=np.int64),
        "targets.keypoint_index": np.zeros(0, dtype=np.int64),
    }
    first, second, third = decode_targets(tensors, payload.kinds, (10, 10), "numpy")
    np.testing.assert_array_equal(first["boxes"], [[4, 5, 4, 6]])  # back in cxcywh
    assert second is None
    assert third["box_index"].tolist() == [3] and "keypoints" not in third
