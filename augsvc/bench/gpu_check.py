"""``make gpu-check``: everything a CUDA machine should prove the first time one is at hand,
in one command and one report file.

It runs the suite's GPU tests (``pytest -m gpu``), the engine and service benchmarks with
``--device cuda`` (one size, and an ImageNet-like mix of sizes), and the first-run probes
of :mod:`augsvc.bench.gpu_probes`, then writes a JSON report whose ``summary`` is the
readable version printed at the end. On a machine without CUDA it says so, writes a
report that says so, and exits 0: the check is for GPU machines, and CI runs it
everywhere. ``--device cpu --quick`` is a dry run of the probes' own logic on small
batches (what the suite runs); the exit status is 1 when a probe, the GPU tests or a
benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from augsvc.bench.gpu_probes import PROBES, Probe, Skip

NO_CUDA = "CUDA is not available on this machine: nothing to check (run this on a GPU machine)"
MIXED_SIZES = "500x375,375x500,500x333,333x500,500x400,400x500,500x281,281x500"


def _run(cmd: list[str], timeout_s: int) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        rc, out = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out = 124, f"timed out after {timeout_s}s\n{exc.stdout or ''}"
    return {
        "command": " ".join(cmd),
        "rc": rc,
        "seconds": round(time.perf_counter() - start, 1),
        "tail": str(out)[-4000:],
    }


def gpu_tests(timeout_s: int) -> dict[str, Any]:
    return _run(
        [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"],
        timeout_s,
    )


def benchmarks(device: str, out_dir: Path, timeout_s: int) -> dict[str, Any]:
    """The engine and service benchmarks as ``augsvc bench`` runs them, each result kept."""
    runs = {
        "engine, one size": ["engine", "--batch", "256"],
        "engine, mixed sizes": ["engine", "--batch", "256", "--sizes", MIXED_SIZES],
        "engine, crop chain": ["engine", "--batch", "256", "--chain", "crop"],
        "service": ["service", "--batch", "256"],
    }
    results = {}
    for i, (name, args) in enumerate(runs.items()):
        path = out_dir / f"gpu-check-bench-{i}.json"
        cmd = [
            sys.executable,
            "-m",
            "augsvc.cli",
            "bench",
            *args,
            "--device",
            device,
            "--json",
            str(path),
        ]
        run = _run(cmd, timeout_s)
        if path.exists():
            run["result"] = json.loads(path.read_text())
            path.unlink()
        results[name] = run
    return results


def probe_all(device: torch.device, quick: bool, only: list[str] | None) -> dict[str, Any]:
    probe = Probe(device, quick=quick)
    found = {}
    for name, fn in PROBES.items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        try:
            finding = fn(probe)
            entry = {
                "status": "ok" if finding.ok else "fail",
                "detail": finding.detail,
                "figures": finding.figures,
            }
        except Skip as exc:
            entry = {"status": "skipped", "detail": str(exc), "figures": {}}
        except Exception as exc:  # a probe that breaks is a finding, not the end of the run
            entry = {
                "status": "error",
                "detail": f"{type(exc).__name__}: {exc}",
                "figures": {},
                "traceback": traceback.format_exc()[-3000:],
            }
        entry["seconds"] = round(time.perf_counter() - start, 2)
        found[name] = entry
    return found


def environment(device: torch.device) -> dict[str, Any]:
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "cuda_available": torch.cuda.is_available(),
    }
    if device.type == "cuda" and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["device_count"] = torch.cuda.device_count()
    return env


def summarise(report: dict[str, Any]) -> list[str]:
    env = report["environment"]
    lines = [f"augsvc gpu-check on {env['device']} (torch {env['torch']})"]
    if report.get("skipped"):
        return [*lines, f"SKIPPED: {report['skipped']}"]
    for name, entry in report.get("probes", {}).items():
        lines.append(f"[{entry['status'].upper():7}] {name}: {entry['detail']}")
    if "gpu_tests" in report:
        t = report["gpu_tests"]
        last = t["tail"].strip().splitlines()[-1:] or [""]
        lines.append(f"[{'OK' if t['rc'] == 0 else 'FAIL':7}] pytest -m gpu: {last[0]}")
    for name, run in report.get("benchmarks", {}).items():
        lines.append(f"[{'OK' if run['rc'] == 0 else 'FAIL':7}] bench {name} ({run['seconds']} s)")
    lines.append(f"result: {'PASS' if report['passed'] else 'FAIL'}")
    return lines


def check(args: argparse.Namespace) -> dict[str, Any]:
    try:
        device = torch.device(args.device)
    except RuntimeError:
        device = torch.device("cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        return {"environment": environment(device), "skipped": NO_CUDA, "passed": True}
    from augsvc.engine import resolve_device

    device = resolve_device(args.device)
    report: dict[str, Any] = {"environment": environment(device)}
    report["probes"] = probe_all(device, args.quick, args.only)
    passed = all(e["status"] in ("ok", "skipped") for e in report["probes"].values())
    if not args.no_tests:
        report["gpu_tests"] = gpu_tests(args.timeout)
        passed = passed and report["gpu_tests"]["rc"] in (0, 5)  # 5: none collected
    if not args.no_bench:
        report["benchmarks"] = benchmarks(str(device), Path(args.out).parent, args.timeout)
        passed = passed and all(r["rc"] == 0 for r in report["benchmarks"].values())
    report["passed"] = passed
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m augsvc.bench.gpu_check", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--device", default="cuda", help="cuda or cuda:N (cpu: a dry run of the probes)"
    )
    parser.add_argument("--out", default="gpu-check.json", help="the report file")
    parser.add_argument("--quick", action="store_true", help="small batches (dry runs)")
    parser.add_argument("--no-tests", action="store_true", help="skip pytest -m gpu")
    parser.add_argument("--no-bench", action="store_true", help="skip the benchmarks")
    parser.add_argument(
        "--only", action="append", choices=list(PROBES), help="run only these probes"
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per subprocess")
    args = parser.parse_args(argv)
    report = check(args)
    report["summary"] = summarise(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print("\n".join(report["summary"]))
    print(f"report: {out}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
