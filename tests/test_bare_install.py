"""augsvc installed as the Docker image installs it: the wheel with no extras.

The two wheels (augsvc and the SDK it builds its CLI on) go into a fresh venv with
``--no-deps``; their declared runtime dependencies, and nothing else, are linked in
from this environment (the closure of ``Requires-Dist`` without extras, read from the
installed metadata). So a command that needs an undeclared package (httpx for the CLI
once was one) fails here exactly as it would in the image.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _runtime(requires: list[str]) -> list[str]:
    """Names of the requirements that apply without extras."""
    reqs = [Requirement(text) for text in requires]
    return [r.name for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def wheel_requires(wheel: Path) -> list[str]:
    """The runtime requirements a built wheel declares (its own METADATA, not what an
    earlier install of the same project recorded)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(name).decode()
    return _runtime(email.message_from_string(text).get_all("Requires-Dist") or [])


def _key(name: str) -> str:
    return name.lower().replace("_", "-")


def runtime_closure(names: list[str]) -> set[str]:
    """Every installed distribution ``names`` need at run time (extras excluded)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        dist = metadata.distribution(todo.pop())
        key = _key(dist.metadata["Name"])
        if key not in seen:
            seen.add(key)
            todo.extend(_runtime(dist.requires or []))
    return seen


def link_distributions(names: set[str], target: Path) -> None:
    """Symlink each distribution's top-level files and folders into ``target``."""
    for name in names:
        dist = metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        for top in tops - {"..", "bin"}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    work = tmp_path_factory.mktemp("bare")
    wheels = work / "wheels"
    for project, parts in ((ROOT, ("pyproject.toml", "README.md", "augsvc")),
                           (ROOT / "clients" / "python", ("pyproject.toml", "README.md",
                                                          "augsvc_client"))):  # fmt: skip
        source = work / f"src-{project.name}"
        source.mkdir()
        for part in parts:
            copy = shutil.copytree if (project / part).is_dir() else shutil.copy
            copy(project / part, source / part)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
             "-w", str(wheels), str(source)],
            check=True,
        )  # fmt: skip
    venv = work / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)],
                   check=True)  # fmt: skip
    # What pip would install: augsvc, and the SDK only because augsvc declares it.
    (server,) = wheels.glob("augsvc-*.whl")
    (sdk,) = wheels.glob("augsvc_client-*.whl")
    declared = wheel_requires(server)
    chosen = [server]
    if "augsvc-client" in {_key(n) for n in declared}:
        chosen.append(sdk)
        declared += wheel_requires(sdk)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
         *map(str, chosen)],
        check=True,
    )  # fmt: skip
    deps = work / "deps"
    deps.mkdir()
    closure = runtime_closure([n for n in declared if _key(n) not in ("augsvc", "augsvc-client")])
    assert not closure & {"pytest", "albumentations", "scikit-learn", "schemathesis"}
    link_distributions(closure, deps)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env = {k: v for k, v in env.items() if not k.startswith("AUGSVC_")}
    env["PYTHONPATH"] = str(deps)
    return venv / "bin" / "augsvc", env


COMMANDS = [
    [], ["serve"], ["recipe"], ["recipe", "put"], ["recipe", "get"], ["recipe", "list"],
    ["recipe", "delete"], ["augment"], ["bench"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "augsvc")
def test_every_subcommand_has_help(bare, command):
    executable, env = bare
    run = subprocess.run(
        [str(executable), *command, "--help"], env=env, capture_output=True, text=True,
        timeout=120, cwd=executable.parent,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage: augsvc" in run.stdout and "Traceback" not in run.stderr


def test_recipe_commands_work_against_a_real_server(bare, start_augsvc, tmp_path):
    executable, env = bare
    server = start_augsvc()
    recipe = tmp_path / "r.yaml"
    recipe.write_text("ops:\n  - op: hflip\n")

    def augsvc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(executable), *args], env={**env, "AUGSVC_URL": server.url},
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip

    put = augsvc("recipe", "put", "bare", str(recipe))
    assert put.returncode == 0, put.stderr
    listed = augsvc("recipe", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[:2] == ["bare", "1"]  # a table by default
    documents = augsvc("recipe", "list", "--json")
    assert documents.returncode == 0, documents.stderr
    assert '"name": "bare"' in documents.stdout
    missing = augsvc("recipe", "get", "nope")
    assert missing.returncode == 1 and "recipe-not-found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_the_installed_wheel_serves_the_playground_and_offline_docs(bare, tmp_path):
    """The page's files are package data of the wheel, and the docs' bundles come with
    a declared dependency: both answer from the bare install."""
    import re
    import signal
    import time

    import httpx

    executable, env = bare
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(executable), "serve", "--host", "127.0.0.1", "--port", "0"],
            env={**env, "AUGSVC_DEVICE": "cpu", "PYTHONUNBUFFERED": "1"}, stdout=out,
            stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not (found := re.search(r"listening on (http://\S+)", log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        url = found.group(1)
        paths = [
            "/ui",
            "/ui/assets/playground.js",
            "/ui/assets/playground.css",
            "/docs",
            "/docs/assets/swagger-ui-bundle.js",
            "/docs/assets/redoc.standalone.js",
        ]
        for path in paths:
            assert httpx.get(url + path, timeout=30).status_code == 200, path
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
