"""Smoke tests for ``augsvc bench``: structure and outputs, never speed."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("skimage", reason="bench photos need scikit-image (augsvc[bench])")

from augsvc.bench import BenchDependencyError, bench_photos
from augsvc.bench.engine import (
    Contender,
    Inputs,
    Skipped,
    run_engine_bench,
)

SMALL = (120, 160)


def test_bench_photos_are_real_rgb_photos_cycled_to_n() -> None:
    photos = bench_photos(10, size=SMALL)
    assert len(photos) == 10
    for photo in photos:
        assert photo.shape == (*SMALL, 3)
        assert photo.dtype == np.uint8
        assert photo.std() > 10  # a photo, not a flat fill
    assert not np.array_equal(photos[0], photos[1])
    assert np.array_equal(photos[0], photos[8])  # 8 bundled photos, cycled
    assert not np.shares_memory(photos[0], photos[8])


def test_bench_photos_missing_scikit_image_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(BenchDependencyError, match=r"pip install 'augsvc\[bench\]'"):
        bench_photos(2)


def _missing_peer(inputs: Inputs, device: torch.device, seed: int) -> Contender:
    raise Skipped("not installed")


def test_engine_bench_structure_and_outputs() -> None:
    result = run_engine_bench(batch=4, repeats=1, warmup=1, device="cpu", size=SMALL)
    by_name = {r.name: r for r in result.results}
    assert list(by_name) == ["augsvc", "kornia", "torchvision", "albumentations", "timm"]
    for r in result.results:
        if r.status == "skipped":
            assert r.reason
            continue
        assert r.status == "ok", r.reason
        assert r.images_per_s is not None and r.images_per_s > 0
        assert r.images_per_s_min is not None and r.images_per_s_max is not None
        assert 0 < r.images_per_s_min <= r.images_per_s <= r.images_per_s_max
        assert r.ratio_to_augsvc is not None and r.ratio_to_augsvc > 0
        assert len(r.batch_seconds) == 1
        out = result.outputs[r.name]
        assert out.shape == (4, 3, 224, 224)
        assert out.dtype == torch.uint8
        assert out.float().std() > 10  # an image, not a flat or saturated fill
    assert by_name["augsvc"].ratio_to_augsvc == 1.0

    markdown = result.markdown()
    assert "| contender | images/s (median) | min-max | ratio to augsvc |" in markdown
    assert "torch " in markdown and "batch 4" in markdown
    data = json.loads(json.dumps(result.to_dict()))
    assert [r["name"] for r in data["results"]] == list(by_name)
    assert data["environment"]["batch"] == 4


@pytest.mark.parametrize("chain", ["randaugment", "trivialaugment"])
def test_policy_chains_run_against_every_peer_that_has_them(chain) -> None:
    result = run_engine_bench(batch=3, repeats=1, warmup=0, device="cpu", size=SMALL, chain=chain)
    by_name = {r.name: r for r in result.results}
    assert by_name["kornia"].status == "skipped"
    assert by_name["timm"].status == ("ok" if chain == "randaugment" else "skipped")
    for name in ("augsvc", "torchvision", "albumentations"):
        assert by_name[name].status == "ok", by_name[name].reason
        assert result.outputs[name].shape == (3, 3, 224, 224)
    assert "rand_augment" in result.markdown() or "trivial_augment_wide" in result.markdown()


def test_missing_peer_is_reported_as_skipped() -> None:
    result = run_engine_bench(
        batch=2, repeats=1, warmup=0, device="cpu", size=SMALL, peers=(_missing_peer,)
    )
    names = [(r.name, r.status) for r in result.results]
    assert names == [("augsvc", "ok"), ("_missing_peer", "skipped")]
    assert "skipped: not installed" in result.markdown()


def test_service_and_stream_benches_run_end_to_end():
    """Smoke test with tiny settings: real server, every path measured, no speed claims."""
    from augsvc.bench.service import run_service_bench, run_stream_bench

    service = run_service_bench(batch=4, repeats=1, warmup=0, device="cpu", size=(60, 80))
    assert [r.images for r in service.rows] == [4, 4, 4, 8, 8, 4, 4, 4, 4]
    assert "torchvision in process" in service.markdown()
    assert all(len(r.seconds) == 1 and r.median > 0 for r in service.rows)
    assert "ratio to in-process engine" in service.markdown()
    stream = run_stream_bench(batch=4, repeats=1, warmup=0, device="cpu", size=(60, 80), files=8)
    # local disk, mixed, the in-process peers, and the same files in an object store
    assert [r.images for r in stream.rows] == [8] * 7
    assert "S3 bucket" in stream.rows[-1].name
    assert "mixup_alpha" in stream.rows[2].name
    assert stream.to_dict()["results"][1]["images_per_s"] > 0
    assert stream.to_dict()["results"][2]["images_per_s"] > 0


def test_sizes_bench_has_a_row_per_size_and_a_mixed_row():
    """``augsvc bench engine --sizes``: one row per size, a mixed-size row, and the
    mixed / one-size ratio of augsvc measured in the same round-robin."""
    from augsvc.bench.sizes import imagenet_like_sizes, parse_sizes, run_sizes_bench

    assert parse_sizes("500x375,2048x1536") == [(375, 500), (1536, 2048)]
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_sizes("500by375")
    shapes = imagenet_like_sizes(256)
    assert len(shapes) == 256 and 140 <= len(set(shapes)) <= 145
    assert all(250 <= s <= 500 for hw in shapes for s in hw)

    result = run_sizes_bench([(60, 80), (90, 120)], batch=4, repeats=1, warmup=0, device="cpu")
    table = result.markdown()
    assert "| 80x60 |" in table and "| 120x90 |" in table and "| mixed: 4 images" in table
    assert "mixed sizes / one size (500x375), same run: augsvc " in table
    for _, engine in result.per_size:
        assert {r.name for r in engine.results if r.status == "ok"} >= {
            "augsvc",
            "augsvc_whole_image",
            "torchvision",
        }
    assert json.loads(json.dumps(result.to_dict()))["chain"] == "crop"
