"""examples/train_cnn.py --quick, end to end: it starts a real `augsvc serve`, streams the
augmented training set from it, trains the four settings and writes its table and plot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="needs the `example` extra: pip install -e '.[example]'")
pytest.importorskip("matplotlib", reason="needs the `example` extra: pip install -e '.[example]'")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_cnn.py"
SETTINGS = ("none", "aug", "drop+l2", "all")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_example(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "clients" / "python"), str(ROOT), env.get("PYTHONPATH", "")]
    )
    for name in ("AUGSVC_REDIS_URL", "AUGSVC_API_KEYS"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_train_cnn_quick_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_example(out)

    results = json.loads((out / "results.json").read_text())
    assert set(results["settings"]) == set(SETTINGS)
    for name in SETTINGS:
        row = results["settings"][name]
        for key in ("train_acc", "val_acc", "test_acc"):
            assert 0.0 <= row[key]["mean"] <= 1.0, (name, key, row[key])
            assert row[key]["std"] >= 0.0
        assert row["test_acc"]["mean"] > 0.2, f"{name} is no better than chance: {row}"
        assert len(row["val_curve_mean"]) == results["config"]["epochs"]
    # Settings 3 and 4 use a regularization chosen on the validation grid; 1 and 2 none.
    for name in ("drop+l2", "all"):
        row = results["settings"][name]
        assert row["l2"] in results["config"]["l2_grid"]
        assert row["dropout"] in results["config"]["dropout_grid"]
    # Settings 2 and 4 really trained on the service's stream: every epoch of every run
    # that uses augmentation received the whole training split from it.
    config = results["config"]
    streamed_runs = [r for r in results["runs"] if r["setting"] in ("aug", "all")]
    assert len(streamed_runs) >= 2
    expected = len(streamed_runs) * config["epochs"] * config["n_train"]
    assert results["streamed"]["samples"] == expected
    assert results["settings"]["none"]["l2"] == 0 and results["settings"]["aug"]["dropout"] == 0
    assert "| 4. augmentation + dropout + L2 |" in (out / "results.md").read_text()
    assert "| 1. no regularization |" in proc.stdout

    plot = out / "learning_curves.png"
    data = plot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 1024


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_train_cnn_mix_setting_trains_with_mixup_on_the_stream(tmp_path: Path) -> None:
    """``--mix`` adds setting 5 (SDK Mixup in the training step on top of the three
    defences), run short: 3 epochs, so it fits beside the quick run."""
    out = tmp_path / "out"
    proc = run_example(out, "--mix", "--epochs", "3")
    results = json.loads((out / "results.json").read_text())
    assert list(results["settings"]) == [*SETTINGS, "all+mix"]
    row = results["settings"]["all+mix"]
    assert row["mix"] == "mixup0.2+cutmix1.0"
    assert (row["l2"], row["dropout"]) == (
        results["settings"]["all"]["l2"], results["settings"]["all"]["dropout"],
    )  # fmt: skip
    assert row["test_acc"]["mean"] > 0.2, row
    assert results["grids"]["all+mix"][0]["chosen"]
    streamed = [r for r in results["runs"] if r["setting"] in ("aug", "all", "all+mix")]
    config = results["config"]
    assert results["streamed"]["samples"] == len(streamed) * config["epochs"] * config["n_train"]
    assert "| 5. augmentation + dropout + L2 + MixUp/CutMix (mixup0.2+cutmix1.0) |" in proc.stdout
