"""One image's targets as they arrive (source pixels) and as they leave (output pixels)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


def _no_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float64)


def _no_keypoints() -> np.ndarray:
    return np.zeros((0, 0, 2), dtype=np.float64)


@dataclass
class ImageTargets:
    """``boxes`` (B,4) xyxy and ``keypoints`` (I,P,2) in continuous source pixels;
    ``labels`` (B,) when given; ``keypoint_visible`` (I,P); ``mask`` (H,W) integer
    labels of the image's size, when given."""

    boxes: np.ndarray = field(default_factory=_no_boxes)
    labels: np.ndarray | None = None
    keypoints: np.ndarray = field(default_factory=_no_keypoints)
    keypoint_visible: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    mask: torch.Tensor | None = None


@dataclass
class MovedTargets:
    """What survives a sample, in continuous output pixels. ``box_index`` is each
    surviving box's index in the input (labels and any metadata join on it), and
    ``visibility`` the fraction of its moved area inside the output. Keypoints are
    never dropped: each keeps its (instance, index) place and says whether it is
    visible."""

    boxes: np.ndarray
    box_index: np.ndarray
    visibility: np.ndarray
    labels: np.ndarray | None
    keypoints: np.ndarray
    keypoint_visible: np.ndarray
    mask: torch.Tensor | None = None
