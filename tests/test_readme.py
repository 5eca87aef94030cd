"""Every code block of README.md and clients/python/README.md runs, or is checked, here.

How each block is treated follows from its fence language (tests/readme/blocks.py):

Blocks run in order, each README in one directory that holds what a fresh clone holds
(the shipped ``examples/``, tests/readme/world.py), against one real ``augsvc serve``
started as the walkthrough starts it and holding only what earlier blocks put there:
a file, recipe or dataset a block uses was shipped or made by a block above it.

* ``python``: runs in that directory, in one namespace per README (a reader's session:
  what a block above defined is defined); its dtype/shape comments are asserted
  (tests/readme/pyclaims.py) and names no block defines come from
  tests/readme/names.py, a reader's own code (a model, a loss).
* ``sh``/``bash``/``shell``: runs in bash there too, statement by statement, with its
  status and output comments checked (tests/readme/shell.py).
* ``json``/``yaml``: a recipe must pass ``parse_recipe``; a problem document must match
  the error tree (code, status, title, type).
* ``promql``: every metric and label it names is served by ``GET /metrics``.
* ``text``: output shown to the reader; the start-up line is compared with the real one.

Anything else fails, unless marked ``<!-- readme-test: skip (reason) -->`` on the line
before its fence: a block the tests cannot run is skipped visibly, with its reason.
The README's ``http://127.0.0.1:8000`` is replaced by the test server's URL.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from augsvc.errors import PROBLEM_TYPE_PREFIX, AugsvcError
from augsvc.recipes import parse_recipe
from tests.readme import shell
from tests.readme.blocks import KINDS, Block, block_ids, read_blocks
from tests.readme.pyexec import run_example
from tests.readme.world import DATA_URLS, README_URLS, clone, upload_dataset

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
READMES = ("README.md", "clients/python/README.md")
TIMEOUT_S = 120


def _read_all() -> tuple[list[Block], list[str]]:
    blocks: list[Block] = []
    problems: list[str] = []
    for name in READMES:
        found, wrong = read_blocks(ROOT / name, name)
        blocks += found
        problems += map(str, wrong)
    return blocks, problems


BLOCKS, MARKER_PROBLEMS = _read_all()
CODE = [b for b in BLOCKS if b.kind != "text"]
TEXT = [b for b in BLOCKS if b.kind == "text"]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The directory every block runs in: a fresh clone's root, as far as they read it."""
    folder = tmp_path_factory.mktemp("clone")
    clone(folder)
    return folder


@pytest.fixture(scope="module")
def readme_server(request, start_augsvc, checkout):
    """``AUGSVC_DATA_ROOTS=$PWD/examples make serve``, run from the clone."""
    env = {"AUGSVC_DATA_ROOTS": str(checkout / "examples")}
    try:  # without rclone (the dev extra) only the object-storage example fails
        s3_server = request.getfixturevalue("s3_server")
    except pytest.skip.Exception:
        s3_server = None
    if s3_server is not None:
        upload_dataset(s3_server.root)
        env |= {"AUGSVC_DATA_URLS": DATA_URLS, "AUGSVC_S3_ENDPOINT": s3_server.endpoint}
        env |= s3_server.env()
    return start_augsvc(**env)


#: One namespace per README, shared by its Python blocks in order.
SESSIONS: dict[str, dict] = {}


def with_server(code: str, url: str) -> str:
    for readme_url in README_URLS:
        code = code.replace(readme_url, url)
    return code


def environment() -> dict[str, str]:
    """This interpreter's environment, this checkout first, no AUGSVC_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUGSVC_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), str(ROOT / "clients" / "python"), env.get("PYTHONPATH")) if p
    )
    return env


# --- one runner per kind of block -------------------------------------------------------


def run_python(block: Block, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("readme_server")
    cwd = request.getfixturevalue("checkout")
    session = SESSIONS.setdefault(block.name, {})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        run_example(
            with_server(block.code, server.url), block.name, block.path, block.line + 1, session
        )


def run_shell(block: Block, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("readme_server")
    cwd = request.getfixturevalue("checkout")
    stmts = shell.statements(with_server(block.code, server.url), block.line + 1)
    outcomes = shell.run(stmts, cwd, environment(), TIMEOUT_S)
    for stmt, outcome in zip(stmts, outcomes, strict=False):
        shell.check(stmt, outcome, cwd, f"{block.name}:{stmt.line}")
    assert len(outcomes) == len(stmts), f"{block.where}: stopped after {len(outcomes)} statements"


def _error_classes(cls: type[AugsvcError] = AugsvcError) -> dict[str, type[AugsvcError]]:
    found = {cls.code: cls}
    for sub in cls.__subclasses__():
        found.update(_error_classes(sub))
    return found


def check_problem(doc: dict, where: str) -> None:
    cls = _error_classes().get(doc.get("code", ""))
    assert cls is not None, f"{where}: no error has the code {doc.get('code')!r}"
    assert doc["type"] == PROBLEM_TYPE_PREFIX + cls.code, where
    assert (doc["status"], doc["title"]) == (cls.status, cls.title), (
        f"{where}: {cls.__name__} is {cls.status} {cls.title!r}"
    )
    for error in doc.get("errors", []):
        assert set(error) == {"loc", "msg"} and isinstance(error["loc"], list), where
        assert error["msg"] in doc["detail"], f"{where}: the detail leaves out {error['msg']!r}"


def check_document(block: Block, request: pytest.FixtureRequest) -> None:
    doc = json.loads(block.code) if block.lang == "json" else yaml.safe_load(block.code)
    assert isinstance(doc, dict), f"{block.where}: expected a JSON/YAML object"
    if "ops" in doc:
        parse_recipe(doc)
    elif str(doc.get("type", "")).startswith(PROBLEM_TYPE_PREFIX):
        check_problem(doc, block.where)
    else:
        pytest.fail(f"{block.where}: neither a recipe (ops) nor a problem (type urn:augsvc:...)")


PROMQL_SELECTOR = re.compile(r"\b(augsvc_\w+)(?:\{([^}]*)\})?")


def check_promql(block: Block, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue("readme_server")
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    named = PROMQL_SELECTOR.findall(block.code)
    assert named, f"{block.where}: no augsvc metric named"
    for metric, selector in named:
        assert metric in labels, f"{block.where}: /metrics serves no {metric}"
        wanted = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector))
        assert wanted <= labels[metric], f"{block.where}: {metric} has labels {labels[metric]}"


RUNNERS = {
    "python": run_python,
    "shell": run_shell,
    "document": check_document,
    "promql": check_promql,
}


# --- tests ------------------------------------------------------------------------------


def test_markers_are_well_formed_and_each_sits_on_a_code_block():
    assert not MARKER_PROBLEMS, "\n".join(MARKER_PROBLEMS)


@pytest.mark.parametrize("block", CODE, ids=block_ids(CODE))
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # CI's few cores
def test_readme_block(block: Block, request: pytest.FixtureRequest) -> None:
    if block.skip is not None:
        pytest.skip(f"{block.where} is marked: {block.skip}")
    runner = RUNNERS.get(block.kind)
    if runner is None:
        pytest.fail(
            f"{block.where}: a {block.lang or 'unlabeled'} code block the README tests "
            f"cannot run. Fence it as one of {', '.join(sorted(KINDS))}, or mark "
            "it <!-- readme-test: skip (why) --> on the line before the fence."
        )
    runner(block, request)


STARTUP = [b for b in TEXT if b.code.startswith("augsvc listening on")]


@pytest.mark.parametrize("block", STARTUP, ids=block_ids(STARTUP))
def test_the_start_up_line_shown_is_the_one_serve_prints(block: Block, readme_server) -> None:
    printed = readme_server.stdout_path.read_text().splitlines()
    shown = with_server(block.code.strip(), readme_server.url)
    assert shown in printed, f"{block.where} shows\n{shown}\nthe server printed\n{printed}"
