"""The command line as a user types it: real subprocesses against a real server.

Service options anywhere on the line and from the environment, defaults in --help,
``augsvc augment`` with a stored recipe and the seed it used, quiet exits into a closed
pipe, a start-up hint whose curl works with and without API keys, ``recipe list`` as a
table, errors that name the URL tried and the op meant, and the ports of ``make serve``,
the benches and the example.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.imagegen import jpeg_bytes

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "augsvc.cli"]
RECIPE = {"ops": [{"op": "rotate", "degrees": 20}, {"op": "resize", "size": [24, 32]}]}


def augsvc(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run the CLI with a clean AUGSVC_* environment plus ``env``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUGSVC_")}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120,
        env={**environment, **(env or {})}, cwd=cwd,
    )  # fmt: skip


def photos(folder: Path, n: int = 2) -> list[Path]:
    paths = []
    for i in range(n):
        path = folder / f"photo{i}.jpg"
        path.write_bytes(jpeg_bytes(64, 48, seed=i))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def server(start_augsvc):
    return start_augsvc()


@pytest.fixture(scope="module")
def keyed_server(start_augsvc, tmp_path_factory):
    missing = tmp_path_factory.mktemp("roots") / "not-mounted"
    return start_augsvc(AUGSVC_API_KEYS="cli-admin:admin", AUGSVC_DATA_ROOTS=str(missing))


def test_service_options_go_anywhere_and_default_to_the_environment(server, tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text('{"ops": [{"op": "hflip"}]}')
    after_action = augsvc("recipe", "put", "anywhere", str(recipe), "--url", server.url)
    assert after_action.returncode == 0, after_action.stderr
    before_action = augsvc("recipe", "--url", server.url, "get", "anywhere@1")
    assert before_action.returncode == 0, before_action.stderr
    up_front = augsvc("--url", server.url, "recipe", "list")
    assert up_front.returncode == 0 and "\nanywhere " in up_front.stdout
    from_env = augsvc("recipe", "get", "anywhere", env={"AUGSVC_URL": server.url})
    assert from_env.returncode == 0, from_env.stderr
    assert '"ref": "anywhere@1"' in from_env.stdout
    # the flag wins over the environment
    flag_wins = augsvc(
        "recipe", "get", "anywhere", "--url", server.url, env={"AUGSVC_URL": "http://127.0.0.1:9"}
    )
    assert flag_wins.returncode == 0, flag_wins.stderr


def help_text(*args: str, env: dict[str, str] | None = None) -> str:
    run = augsvc(*args, "--help", env=env)
    assert run.returncode == 0, run.stderr
    return " ".join(run.stdout.split())  # argparse wraps lines to the terminal


def test_help_shows_defaults_and_the_url_in_force():
    top = help_text(env={"AUGSVC_URL": "http://example.invalid:1234"})
    assert "now http://example.invalid:1234" in top
    assert "else http://127.0.0.1:8000" in top
    augment = help_text("augment")
    assert "(default: auto)" in augment and "(default: 0)" in augment
    assert "stored reference" in augment and "(default: None)" not in augment
    leaf = help_text("recipe", "get", env={"AUGSVC_API_KEY": "secret-value"})
    assert "now set" in leaf and "secret-value" not in leaf


def test_augment_a_stored_recipe_equals_the_service_and_prints_its_seed(server, tmp_path):
    with server.client() as client:
        client.put("/v1/recipes/cli-stored", json=RECIPE).raise_for_status()
        paths = photos(tmp_path)
        files = [("image", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]
        remote = client.post(
            "/v1/augment", params={"recipe": "cli-stored@1", "seed": 11, "offset": 3},
            files=files, headers={"Accept": "application/zip"},
        )  # fmt: skip
    remote.raise_for_status()
    with zipfile.ZipFile(io.BytesIO(remote.content)) as archive:
        served = [archive.read(n) for n in sorted(archive.namelist())]

    out = tmp_path / "out"
    run = augsvc(
        "augment", "--recipe", "cli-stored@1", "--url", server.url, "--seed", "11",
        "--offset", "3", "--device", "cpu", "--out", str(out), *map(str, paths), cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "seed 11" in run.stderr
    assert [(out / "000003.png").read_bytes(), (out / "000004.png").read_bytes()] == served

    # Without --seed a random one is drawn and printed; passing it back repeats the run.
    drawn = augsvc(
        "augment", "--recipe", "cli-stored", "--device", "cpu", "--out", str(tmp_path / "a"),
        str(paths[0]), env={"AUGSVC_URL": server.url},
    )  # fmt: skip
    assert drawn.returncode == 0, drawn.stderr
    seed = int(re.search(r"seed (\d+)", drawn.stderr).group(1))
    assert 0 <= seed < 2**63
    again = augsvc(
        "augment", "--recipe", "cli-stored", "--seed", str(seed), "--device", "cpu",
        "--out", str(tmp_path / "b"), str(paths[0]), env={"AUGSVC_URL": server.url},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    png = "000000.png"
    assert (tmp_path / "a" / png).read_bytes() == (tmp_path / "b" / png).read_bytes()


def test_augment_names_what_is_wrong_with_the_recipe_argument(server, tmp_path):
    (image,) = photos(tmp_path, 1)
    unknown = augsvc(
        "augment", "--recipe", "no-such-recipe", "--url", server.url, "--out",
        str(tmp_path / "o"), str(image),
    )  # fmt: skip
    assert unknown.returncode == 1 and "recipe-not-found" in unknown.stderr
    malformed = augsvc("augment", "--recipe", "Not/A/File.json", "--out", "o", str(image))
    assert malformed.returncode == 1
    assert "neither an existing file nor a stored recipe reference" in malformed.stderr
    assert "Traceback" not in unknown.stderr + malformed.stderr


def test_a_closed_pipe_ends_the_command_quietly(server):
    """``augsvc recipe list | head -c 100`` with more output than a pipe buffers."""
    big = {"ops": [{"op": "rotate", "degrees": i % 90} for i in range(64)]}
    with server.client() as client:
        for i in range(40):
            client.put(f"/v1/recipes/pipe-{i:02d}", json=big).raise_for_status()
    command = (
        f"set -o pipefail; {shlex.join(CLI)} recipe list --json --url {server.url} | head -c 100"
    )
    run = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert len(run.stdout) == 100 and run.stdout.startswith("{")
    assert run.stderr == "", run.stderr
    assert run.returncode == 0


def _startup_curl(server) -> list[str]:
    line = next(
        line for line in server.stdout_path.read_text().splitlines()
        if line.startswith("augsvc listening on")
    )  # fmt: skip
    return shlex.split(line.split("try: ", 1)[1].split("  (API docs", 1)[0])


def test_the_start_up_hint_works_on_an_open_server(server):
    command = _startup_curl(server)
    assert command == ["curl", f"{server.url}/v1/ops"]
    done = subprocess.run([*command, "-sS", "-o", "/dev/null", "-w", "%{http_code}"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.stdout == "200"


def test_the_start_up_hint_carries_a_key_when_keys_are_configured(keyed_server):
    command = _startup_curl(keyed_server)
    assert "Authorization: Bearer <key from AUGSVC_API_KEYS>" in command
    with_key = [c.replace("<key from AUGSVC_API_KEYS>", "cli-admin") for c in command]
    done = subprocess.run([*with_key, "-sS", "-o", "/dev/null", "-w", "%{http_code}"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.stdout == "200"
    assert httpx.get(f"{keyed_server.url}/v1/ops").status_code == 401


def test_a_missing_data_root_is_named_at_start(keyed_server):
    log = keyed_server.stderr_path.read_text()
    assert "AUGSVC_DATA_ROOTS names" in log and "not-mounted" in log


def test_the_api_key_comes_from_the_environment(keyed_server, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("ops:\n  - op: vflip\n")
    refused = augsvc("recipe", "put", "keyed", str(recipe), "--url", keyed_server.url)
    assert refused.returncode == 1 and "unauthorized" in refused.stderr
    env = {"AUGSVC_URL": keyed_server.url, "AUGSVC_API_KEY": "cli-admin"}
    accepted = augsvc("recipe", "put", "keyed", str(recipe), env=env)
    assert accepted.returncode == 0, accepted.stderr


def readme_flip_recipe() -> dict:
    """The recipe the README's quickstart writes to flip.json."""
    text = (ROOT / "README.md").read_text()
    return json.loads(re.search(r"cat > flip.json <<'EOF'\n(.*?)\nEOF", text, re.S).group(1))


def readme_recipe_table() -> list[list[str]]:
    """The header and the flip line of the table the README shows for `recipe list`."""
    text = (ROOT / "README.md").read_text()
    table = re.search(r"```text\n(NAME +VERSION +DIGEST +OPS\n.*?)```", text, re.S).group(1)
    return [line.split() for line in table.splitlines()]


def test_recipe_list_is_a_table_with_json_on_request(start_augsvc):
    server = start_augsvc()  # its own store: the table holds exactly these recipes
    empty = augsvc("recipe", "list", "--url", server.url)
    assert empty.returncode == 0 and empty.stdout == ""
    assert f"no recipes stored at {server.url}" in empty.stderr
    nested = {"ops": [{"op": "one_of", "ops": [{"op": "hflip"}, {"op": "vflip"}]}]}
    with server.client() as client:
        first = client.put("/v1/recipes/tabled", json=RECIPE).json()
        latest = client.put("/v1/recipes/tabled", json={"ops": [{"op": "rotate", "degrees": 5}]})
        second = client.put("/v1/recipes/nested", json=nested).json()
    digest = latest.json()["digest"]
    assert first["digest"] != digest
    listed = augsvc("recipe", "list", "--url", server.url)
    assert listed.returncode == 0, listed.stderr
    assert [line.split() for line in listed.stdout.splitlines()] == [
        ["NAME", "VERSION", "DIGEST", "OPS"],
        ["nested", "1", second["digest"][7:19], "one_of(hflip,", "vflip)"],
        ["tabled", "2", digest[7:19], "rotate"],
    ]
    # the README's table, for the README's flip recipe
    with server.client() as client:
        client.put("/v1/recipes/flip", json=readme_flip_recipe()).raise_for_status()
    listed = augsvc("recipe", "list", "--url", server.url)
    shown_header, shown_flip = readme_recipe_table()
    assert listed.stdout.splitlines()[0].split() == shown_header
    assert shown_flip in [line.split() for line in listed.stdout.splitlines()]

    documents = augsvc("recipe", "list", "--json", "--url", server.url)
    assert documents.returncode == 0, documents.stderr
    records = {r["name"]: r for r in json.loads(documents.stdout)["recipes"]}
    assert records["nested"]["recipe"]["ops"][0]["op"] == "one_of"
    assert records["tabled"]["version"] == 2 and records["tabled"]["digest"] == digest


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_service_that_does_not_answer_is_named_by_the_url_tried(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    listed = augsvc("recipe", "list", "--url", url)
    assert listed.returncode == 1
    assert f"no answer from the service at {url}" in listed.stderr
    assert "--url or AUGSVC_URL" in listed.stderr and "Traceback" not in listed.stderr
    from_env = augsvc("recipe", "get", "flip", env={"AUGSVC_URL": url})
    assert f"no answer from the service at {url}" in from_env.stderr
    (image,) = photos(tmp_path, 1)
    fetched = augsvc("augment", "--recipe", "flip@1", "--url", url, "--out", str(tmp_path / "o"),
                     str(image))  # fmt: skip
    assert fetched.returncode == 1
    assert f"augsvc augment: no answer from the service at {url}" in fetched.stderr


def test_an_unknown_op_is_answered_with_the_closest_name(server, tmp_path):
    recipe = tmp_path / "typo.json"
    recipe.write_text('{"ops": [{"op": "hflip"}, {"op": "rotat", "degrees": 10}]}')
    put = augsvc("recipe", "put", "typo", str(recipe), "--url", server.url)
    assert put.returncode == 1
    assert "unknown op 'rotat': did you mean 'rotate'?" in put.stderr
    with server.client() as client:
        answer = client.put("/v1/recipes/typo", json={"ops": [{"op": "colour_jitter"}]})
        inline = client.post("/v1/preview", files={"recipe": '{"ops": [{"op": "hflp"}]}'})
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["loc"] == ["ops", 0]
    assert error["msg"].endswith("unknown op 'colour_jitter': did you mean 'color_jitter'?")
    assert inline.status_code == 422 and "did you mean 'hflip'?" in inline.text
    # a name close to nothing still lists every op
    far = augsvc("augment", "--recipe", str(_write(tmp_path, {"ops": [{"op": "nudge"}]})),
                 "--out", str(tmp_path / "o"), str(photos(tmp_path, 1)[0]))  # fmt: skip
    assert far.returncode == 1
    assert "unknown op 'nudge': expected one of" in far.stderr and "'rotate'" in far.stderr


def _write(folder: Path, document: dict) -> Path:
    path = folder / "recipe.json"
    path.write_text(json.dumps(document))
    return path


def _make_serve(*variables: str) -> str:
    run = subprocess.run(
        ["make", "--no-print-directory", "-n", "serve", *variables],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )  # fmt: skip  (under `make test` a nested make would print the directory it leaves)
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()[-1]


def test_make_serve_takes_a_port_and_a_host():
    assert _make_serve().endswith("/bin/augsvc serve --host 127.0.0.1 --port 8000")
    chosen = _make_serve("PORT=8123", "HOST=0.0.0.0")
    assert chosen.endswith("/bin/augsvc serve --host 0.0.0.0 --port 8123")


def test_the_bench_port_is_checked_and_used():
    refused = augsvc("bench", "service", "--port", "70000")
    assert refused.returncode == 2 and "port must be in 0..65535" in refused.stderr
    from augsvc.bench.service import local_server

    port = _closed_port()
    with local_server({"AUGSVC_DEVICE": "cpu"}, port=port) as url:
        assert url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/healthz").status_code == 200


def test_the_example_takes_a_port(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("train_cnn", ROOT / "examples" / "train_cnn.py")
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "train_cnn", example)  # its dataclasses look it up
    spec.loader.exec_module(example)
    port = _closed_port()
    with example.running_service(tmp_path, tmp_path / "serve.log", port=port) as url:
        assert url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/healthz").status_code == 200
