"""``make gpu-check`` runs everywhere: on a machine without CUDA it says so, writes a
report that says so and exits 0; the probes it runs on a GPU are dry-run on the CPU
here, so the first GPU run does not meet a broken check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from augsvc.bench.gpu_check import NO_CUDA, main
from augsvc.bench.gpu_probes import PROBES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the clean skip is for machines without CUDA")
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_gpu_check_skips_cleanly_without_cuda_and_writes_the_report(tmp_path):
    report = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "clients/python")])}
    # -o: the venv stamp counts as made, so the target runs with this interpreter as is
    run = subprocess.run(
        ["make", "-o", ".venv/.installed", "gpu-check", f"PY={sys.executable}",
         f"GPU_REPORT={report}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SKIPPED: {NO_CUDA}" in run.stdout
    body = json.loads(report.read_text())
    assert body["skipped"] == NO_CUDA and body["passed"] is True
    assert body["environment"]["cuda_available"] is False
    assert body["summary"][-1] == f"SKIPPED: {NO_CUDA}"


def test_the_probes_dry_run_on_the_cpu_and_the_report_lists_every_one(tmp_path, capsys):
    report = tmp_path / "dry.json"
    argv = ["--device", "cpu", "--quick", "--no-tests", "--no-bench", "--out", str(report)]
    assert main(argv) == 0, capsys.readouterr().out
    body = json.loads(report.read_text())
    assert list(body["probes"]) == list(PROBES)
    statuses = {name: entry["status"] for name, entry in body["probes"].items()}
    cuda_only = {
        "syncs and launches per batch",
        "nvjpeg vs cpu decode",
        "out of memory -> 503",
        "device memory",
    }
    assert statuses == {name: "skipped" if name in cuda_only else "ok" for name in PROBES}
    figures = body["probes"]["split and crowd invariance"]["figures"]
    assert figures == {n: {"split": 0, "crowd": 0} for n in ("contrast mean", "blur")}
    assert set(body["probes"]["cpu vs device"]["figures"].values()) == {0.0}
    out = capsys.readouterr().out
    assert "result: PASS" in out and f"report: {report}" in out
    assert body["summary"] == out.splitlines()[:-1]


def test_a_failing_gpu_test_run_fails_the_check(tmp_path, monkeypatch):
    """The subprocess results count: a failing ``pytest -m gpu`` makes the check fail."""
    import augsvc.bench.gpu_check as gpu_check

    def failing(timeout_s: int) -> dict:
        return {"command": "pytest -m gpu", "rc": 1, "seconds": 0.1, "tail": "1 failed"}

    monkeypatch.setattr(gpu_check, "gpu_tests", failing)
    report = tmp_path / "fail.json"
    argv = ["--device", "cpu", "--quick", "--no-bench", "--only", "device validation",
            "--out", str(report)]  # fmt: skip
    assert main(argv) == 1
    body = json.loads(report.read_text())
    assert body["passed"] is False
    assert "[FAIL   ] pytest -m gpu: 1 failed" in body["summary"]
