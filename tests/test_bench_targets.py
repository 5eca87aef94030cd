"""Smoke test for ``augsvc bench targets``: every library runs with and without targets
and the table reads as pairs; never speed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("skimage", reason="bench photos need scikit-image (augsvc[bench])")

from augsvc.bench.photos import bench_photos
from augsvc.bench.targets import BOXES_PER_IMAGE, make_targets, run_targets_bench


def test_targets_are_boxes_painted_into_their_label_map():
    photos = bench_photos(2, size=(120, 160))
    targets = make_targets(photos)
    for boxes, mask in zip(targets.boxes, targets.masks, strict=True):
        assert boxes.shape == (BOXES_PER_IMAGE, 4) and mask.shape == (120, 160)
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        last = boxes[-1].astype(int)  # painted last, so nothing covers it
        assert (mask[last[1] : last[3], last[0] : last[2]] == BOXES_PER_IMAGE).all()


def test_every_library_runs_with_and_without_targets():
    result = run_targets_bench(batch=2, repeats=1, warmup=1, device="cpu", size=(120, 160))
    names = [r.name for r in result.bench.results]
    assert names == ["augsvc", "augsvc_targets", "torchvision", "torchvision_targets",
                     "albumentations", "albumentations_targets"]  # fmt: skip
    assert all(r.status == "ok" for r in result.bench.results), result.bench.results
    table = result.markdown().splitlines()
    assert table[3].startswith("| library | images only") and len(table) == 8
    assert result.to_dict()["target"] == "targets"
    assert all(np.isfinite(r.images_per_s) for r in result.bench.results)


def test_the_command_prints_the_table():
    done = subprocess.run(
        [sys.executable, "-m", "augsvc.cli", "bench", "targets", "--batch", "2", "--repeats", "1",
         "--device", "cpu"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| augsvc |" in done.stdout and "targets cost" in done.stdout
