"""The SDK stands alone: it never imports the server package, and installs without it."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

SDK_ROOT = Path(__file__).resolve().parents[2] / "clients" / "python"

# The SDK's runtime dependencies (and theirs), as top-level names in site-packages.
DEPENDENCIES = (
    "httpx", "httpcore", "h11", "anyio", "sniffio", "certifi", "idna", "numpy", "numpy.libs",
    "safetensors", "yaml", "_yaml", "typing_extensions.py",
)  # fmt: skip
# What the SDK's own unit tests need besides: pytest, and Pillow for the `images` extra.
TEST_DEPENDENCIES = (
    "pytest", "_pytest", "pluggy", "iniconfig", "packaging", "py.py", "pygments", "PIL",
    "pillow.libs",
)  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_file_of_the_sdk_imports_the_server_package():
    files = sorted(SDK_ROOT.rglob("*.py"))
    assert len(files) > 10
    offenders = {}
    for path in files:
        server_imports = [m for m in imported_modules(path) if m.split(".")[0] == "augsvc"]
        if server_imports:
            offenders[str(path.relative_to(SDK_ROOT))] = server_imports
    assert offenders == {}


def test_importing_the_sdk_does_not_import_torch():
    code = "import sys, augsvc_client; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=SDK_ROOT)


@pytest.mark.slow
def test_the_wheel_installs_and_imports_in_a_fresh_venv_without_augsvc(tmp_path):
    # Build from a copy, so setuptools' build/ and egg-info never land in the source tree.
    source = tmp_path / "src"
    shutil.copytree(
        SDK_ROOT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(source)],
        check=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("augsvc_client-*.whl")

    venv = tmp_path / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )

    # Only the SDK's dependencies, linked from this environment: never augsvc or torch.
    deps = tmp_path / "deps"
    deps.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for name in DEPENDENCIES + TEST_DEPENDENCIES:
        if (site / name).exists():
            (deps / name).symlink_to(site / name)
    assert not any(p.name.startswith(("augsvc", "torch")) for p in deps.iterdir())

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(deps)
    check = (
        "import sys, augsvc_client\n"
        "from augsvc_client import AsyncClient, Client, RetryPolicy, errors\n"
        "assert augsvc_client.__file__.startswith(sys.prefix), augsvc_client.__file__\n"
        "assert not any(m == 'augsvc' or m.startswith('augsvc.') for m in sys.modules)\n"
        "assert 'torch' not in sys.modules\n"
        "e = errors.from_problem(404, {'code': 'recipe-not-found', 'detail': 'x'})\n"
        "assert isinstance(e, errors.RecipeNotFound)\n"
        "Client('http://127.0.0.1:9').close()\n"
        "try:\n"
        "    import augsvc\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('augsvc is importable in the fresh venv')\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [str(python), "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

    # The SDK's unit tests run there too: they need nothing of the server (torch tests skip).
    tests = tmp_path / "sdk_tests"
    shutil.copytree(SDK_ROOT / "sdk_tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         str(tests)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
