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


# --- the README's install command for a GPU box ------------------------------------------


def readme_install_command() -> list[str]:
    """The words of the README's one ``pip install`` line for a GPU box (after ``pip``),
    read from the README so the test runs what a reader copies."""
    import re
    import shlex

    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Two commands\n", 1)[1].split("\n## ", 1)[0]
    lines = re.findall(r"^pip install [^\n#]*", section, flags=re.MULTILINE)
    assert len(lines) == 1, f"expected one pip install line under Two commands: {lines}"
    return shlex.split(lines[0])[1:]


def _applying(requires: list[str] | None, extra: str = "") -> list[str]:
    """The requirements that apply to an install asking for ``extra`` ("" for none)."""
    reqs = [Requirement(text) for text in requires or []]
    return [str(r) for r in reqs if r.marker is None or r.marker.evaluate({"extra": extra})]


def box_closure(requirements: list[str]) -> set[str]:
    """Every installed distribution ``requirements`` need, with the extras they ask for
    (``redis[hiredis]`` brings hiredis), leaving out augsvc and its SDK."""
    names: set[str] = set()
    seen: set[tuple[str, str]] = set()
    todo = [Requirement(text) for text in requirements]
    while todo:
        req = todo.pop()
        if _key(req.name) in ("augsvc", "augsvc-client"):
            continue
        for extra in {"", *req.extras}:
            if (_key(req.name), extra) in seen:
                continue
            seen.add((_key(req.name), extra))
            dist = metadata.distribution(req.name)
            names.add(_key(dist.metadata["Name"]))
            todo.extend(Requirement(text) for text in _applying(dist.requires, extra))
    return names


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """A copy of what a clone holds for the two packages, a fresh venv, and an
    environment in which the box's own packages (torch and the rest of augsvc's
    runtime closure, setuptools to build) are already installed, as a GPU box's are:
    pip finds them on ``PYTHONPATH`` and keeps them. No index is reachable."""
    work = tmp_path_factory.mktemp("gpu-box")
    tree = work / "augsvc"
    for part in ("pyproject.toml", "README.md", "augsvc", "clients/python/pyproject.toml",
                 "clients/python/README.md", "clients/python/augsvc_client"):  # fmt: skip
        (tree / part).parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, tree / part)
    venv = work / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)],
                   check=True)  # fmt: skip
    needed = [
        *_applying(metadata.requires("augsvc")),
        *_applying(metadata.requires("augsvc_client")),
    ]
    closure = box_closure([*needed, "setuptools"])
    deps = work / "deps"
    deps.mkdir()
    link_distributions(closure, deps)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env = {k: v for k, v in env.items() if not k.startswith(("AUGSVC_", "PIP_"))}
    env |= {"PYTHONPATH": str(deps), "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return tree, venv, env


def pip(venv: Path, args: list[str], cwd: Path, env: dict[str, str]):
    """pip in the venv; an install builds with the box's setuptools (no index to fetch
    a build environment from)."""
    offline = ["--no-build-isolation"] if args[:1] == ["install"] else []
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", *args, *offline],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_the_readme_gpu_box_command_installs_both_packages_where_pip_install_dot_fails(checkout):
    tree, venv, env = checkout
    alone = pip(venv, ["install", "."], tree, env)
    assert alone.returncode != 0
    assert "augsvc_client" in alone.stderr and "No matching distribution" in alone.stderr
    command = readme_install_command()
    assert command[0] == "install" and "./clients/python" in command
    done = pip(venv, command, tree, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    site = next((venv / "lib").glob("python*/site-packages"))
    listed = pip(venv, ["list", "--format=freeze", "--path", str(site)], tree, env)
    installed = {line.split("==")[0].lower().replace("_", "-") for line in listed.stdout.split()}
    assert {"augsvc", "augsvc-client"} <= installed, listed.stdout
    assert "torch" not in installed  # the box's own torch is kept, not replaced
    run = subprocess.run(
        [str(venv / "bin" / "augsvc"), "recipe", "--help"], env=env, capture_output=True,
        text=True, timeout=120, cwd=venv,
    )  # fmt: skip
    assert run.returncode == 0 and "usage: augsvc" in run.stdout, run.stderr[-2000:]
