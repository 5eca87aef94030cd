"""Every place that takes a device accepts the same words: auto, cpu, cuda, cuda:N.

``auto`` is the default of AUGSVC_DEVICE and of the CLI's ``--device``, and the README's
in-process example passes it to ``augment``; a place that handed the word straight to
``torch.device`` crashed on it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augsvc.cli import main
from augsvc.codec import encode_png
from augsvc.engine import augment, compile_plan, resolve_device
from augsvc.recipes import parse_recipe
from tests.photos import photo, photo_batch

RECIPE = {"ops": [{"op": "rotate", "degrees": 30}, {"op": "random_resized_crop", "size": 48}]}


def test_engine_accepts_auto_and_runs_where_resolve_device_points():
    plan = compile_plan(parse_recipe(RECIPE))
    batch = photo_batch(3, 60, 80)
    auto = augment(plan, batch, seed=9, device="auto")
    explicit = augment(plan, batch, seed=9, device=resolve_device("auto"))
    assert auto.images.device == resolve_device("auto")
    assert torch.equal(auto.images, explicit.images)
    np.testing.assert_array_equal(auto.params["matrix"], explicit.params["matrix"])
    if not torch.cuda.is_available():
        assert torch.equal(auto.images, augment(plan, batch, seed=9, device="cpu").images)


@pytest.mark.parametrize("spec", ["tpu", "bogus", "meta", "cuda:x"])
def test_engine_refuses_an_unknown_device_by_name(spec):
    plan = compile_plan(parse_recipe(RECIPE))
    with pytest.raises(ValueError, match=repr(spec)):
        augment(plan, photo_batch(1, 60, 80), seed=0, device=spec)


def test_cli_augment_with_device_auto_writes_the_cpu_bytes(tmp_path, capsys):
    recipe = tmp_path / "r.json"
    recipe.write_text('{"ops": [{"op": "hflip", "p": 1.0}, {"op": "resize", "size": [30, 40]}]}')
    image = tmp_path / "photo.png"
    image.write_bytes(encode_png(photo(60, 80)))
    outputs = {}
    for device in ("auto", "cpu"):
        out = tmp_path / device
        argv = ["augment", "--recipe", str(recipe), "--device", device, "--out", str(out)]
        assert main([*argv, str(image)]) == 0
        outputs[device] = (out / "000000.png").read_bytes()
    if not torch.cuda.is_available():
        assert outputs["auto"] == outputs["cpu"]
    argv = ["augment", "--recipe", str(recipe), "--device", "tpu", "--out", str(tmp_path / "x")]
    assert main([*argv, str(image)]) == 1
    assert "unknown device 'tpu'" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["engine", "service", "stream"])
def test_bench_names_a_bad_device_before_measuring(target, capsys):
    assert main(["bench", target, "--device", "tpu"]) == 1
    assert f"augsvc bench {target}: unknown device 'tpu'" in capsys.readouterr().err


def test_bench_engine_runs_with_device_auto():
    pytest.importorskip("skimage", reason="bench photos need scikit-image (augsvc[bench])")
    from augsvc.bench.engine import run_engine_bench

    result = run_engine_bench(batch=2, repeats=1, warmup=0, device="auto", size=(60, 80), peers=())
    assert result.environment["device"] == str(resolve_device("auto"))


@pytest.mark.parametrize("spec", ["auto", "cpu"])
def test_settings_accept_auto_and_cpu(spec, monkeypatch):
    from augsvc.api.app import create_app
    from augsvc.config import Settings

    monkeypatch.setenv("AUGSVC_DEVICE", spec)
    assert create_app(Settings()).state.device == resolve_device(spec)


def test_serve_names_a_bad_device_setting_and_exits_2(monkeypatch, capsys):
    from augsvc.cli.serve import serve

    monkeypatch.setenv("AUGSVC_DEVICE", "tpu")
    assert serve("127.0.0.1", 0) == 2
    assert "AUGSVC_DEVICE: unknown device 'tpu'" in capsys.readouterr().err
