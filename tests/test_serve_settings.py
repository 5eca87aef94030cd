"""What `augsvc serve` says about its environment before it serves: real subprocesses.

A bad value stops it with exit 2 and one line per variable (its name, what is wrong, the
form it takes), never a traceback; a misspelt variable is named with the setting it was
probably meant as; a Redis that does not answer is named, its password masked.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from augsvc.config import Settings, expected_form, masked_url, unknown_variables

README = Path(__file__).resolve().parents[1] / "README.md"
SERVE = [sys.executable, "-m", "augsvc.cli", "serve", "--port", "0"]


def serve(env: dict[str, str], timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """`augsvc serve` with only these AUGSVC_* variables, expected to stop by itself."""
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("AUGSVC_")}
    return subprocess.run(
        SERVE, capture_output=True, text=True, timeout=timeout_s, env={**environment, **env}
    )


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def readme_settings_block() -> list[str]:
    """The error output the README's Settings section shows."""
    text = README.read_text()
    section = text[text.index("## Settings") :]
    block = re.search(r"```text\n(augsvc: invalid settings.*?)```", section, re.S)
    assert block, "the Settings section shows no invalid-settings output"
    return block.group(1).splitlines()


def test_a_redis_url_that_is_not_one_is_named_with_its_form_and_exit_2():
    run = serve({"AUGSVC_REDIS_URL": "http://x"})
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [
        "augsvc: invalid settings (AUGSVC_* environment):",
        "  AUGSVC_REDIS_URL: not a Redis URL (scheme 'http'); expected "
        "redis://[:password@]host[:port][/db], rediss://... for TLS or unix:///path/to/socket",
    ]


def test_every_bad_variable_gets_one_line_with_its_name_and_form():
    run = serve(
        {"AUGSVC_MAX_IMAGES": "abc", "AUGSVC_BODY_READ_TIMEOUT_S": "-1",
         "AUGSVC_DEVICE_DECODE": "maybe"}
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    lines = run.stderr.splitlines()
    assert lines[1:] == [  # in the order of the README's table
        "  AUGSVC_DEVICE_DECODE='maybe': not true or false; expected true or false",
        "  AUGSVC_BODY_READ_TIMEOUT_S='-1': should be greater than 0; "
        "expected a number > 0 (default 30.0)",
        "  AUGSVC_MAX_IMAGES='abc': not a whole number; expected a whole number > 0 (default 256)",
    ]
    # pydantic's own field names and its error links are not what the user typed
    assert "max_images" not in run.stderr and "errors.pydantic.dev" not in run.stderr


def test_the_readme_shows_what_serve_prints():
    run = serve({"AUGSVC_REDIS_URL": "http://x", "AUGSVC_MAX_IMAGES": "abc"})
    assert run.returncode == 2
    assert run.stderr.splitlines() == readme_settings_block()


def test_a_secret_setting_is_never_echoed():
    run = serve({"AUGSVC_REDIS_URL": "http://user:hunter2-password@x:notaport"})
    assert run.returncode == 2
    assert "hunter2" not in run.stderr and "AUGSVC_REDIS_URL: not a Redis URL" in run.stderr
    bad_port = serve({"AUGSVC_REDIS_URL": "redis://:hunter2-password@x:notaport/0"})
    assert bad_port.returncode == 2 and "hunter2" not in bad_port.stderr
    assert "AUGSVC_REDIS_URL: not a Redis URL (its port is not a number)" in bad_port.stderr


def test_a_redis_url_redis_cannot_read_is_exit_2_not_a_lifespan_traceback():
    """The scheme is right, a query argument is not: redis-py's own reader says so."""
    run = serve({"AUGSVC_REDIS_URL": "redis://127.0.0.1:1/0?socket_timeout=soon"})
    assert run.returncode == 2, run.stderr
    assert "AUGSVC_REDIS_URL: " in run.stderr and "socket_timeout" in run.stderr
    assert "Traceback" not in run.stderr


def test_retired_variables_keep_refusing_beside_other_problems():
    run = serve({"AUGSVC_MAX_REQUEST_PIXELS": "1000", "AUGSVC_MAX_INFLIGHT_PIXELS": "5"})
    assert run.returncode == 2
    assert run.stderr.splitlines()[1:] == [
        "  AUGSVC_MAX_REQUEST_PIXELS is retired: set AUGSVC_MAX_JOB_BYTES (bytes) instead",
        "  AUGSVC_MAX_INFLIGHT_PIXELS is retired: set AUGSVC_MAX_INFLIGHT_BYTES (bytes) instead",
    ]
    both = serve({"AUGSVC_MAX_REQUEST_PIXELS": "1000", "AUGSVC_MAX_IMAGES": "abc"})
    assert both.returncode == 2
    assert "AUGSVC_MAX_IMAGES='abc': not a whole number" in both.stderr
    assert "AUGSVC_MAX_REQUEST_PIXELS is retired" in both.stderr


@pytest.fixture(scope="module")
def misspelt_and_no_redis(start_augsvc):
    port = closed_port()
    return port, start_augsvc(
        AUGSVC_MAX_IMAGE="4",
        AUGSVC_REDIS_ULR="redis://localhost",
        AUGSVC_URL="http://127.0.0.1:9",  # the CLI's and the SDK's: no warning
        AUGSVC_REDIS_URL=f"redis://:hunter2-password@127.0.0.1:{port}/0",
    )


def test_a_misspelt_variable_is_named_with_the_setting_it_was_meant_as(misspelt_and_no_redis):
    _, server = misspelt_and_no_redis
    log = server.stderr_path.read_text()
    assert (
        "AUGSVC_MAX_IMAGE is not a setting and is ignored: did you mean AUGSVC_MAX_IMAGES?" in log
    )
    assert "AUGSVC_REDIS_ULR is not a setting and is ignored: did you mean AUGSVC_REDIS_URL?" in log
    assert "AUGSVC_URL" not in log


def test_an_unreachable_redis_is_named_with_its_password_masked(misspelt_and_no_redis):
    port, server = misspelt_and_no_redis
    log = server.stderr_path.read_text()
    assert f"Redis at redis://:***@127.0.0.1:{port}/0 (AUGSVC_REDIS_URL) is unreachable" in log
    assert "hunter2" not in log + server.stdout_path.read_text()
    # it still serves, and says what the missing store means
    with server.client() as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/recipes").json()["code"] == "store-unavailable"


# --- the pieces, without a process --------------------------------------------------------


def test_the_expected_form_follows_each_fields_type_and_bounds():
    fields = Settings.model_fields
    assert expected_form(fields["preview_max"]) == "a whole number > 0 and <= 256 (default 64)"
    assert expected_form(fields["engine_threads"]) == "a whole number >= 0 (default 0)"
    assert expected_form(fields["device"]) == "auto, cpu, cuda or cuda:N (default auto)"
    assert expected_form(fields["data_roots"]) == "text"
    # every field has a form a user can read
    assert all(expected_form(field) for field in fields.values())


def test_unknown_variables_are_only_augsvc_ones_that_are_no_setting():
    environ = {
        "AUGSVC_QUEUE_DEPHT": "3", "AUGSVC_MAX_STREAMS": "2", "AUGSVC_API_KEY": "k",
        "AUGSVC_MAX_REQUEST_PIXELS": "1", "augsvc_device": "cpu", "AUGSVC_COLOUR": "blue",
        "HOME": "/root",
    }  # fmt: skip
    assert unknown_variables(environ) == [
        "AUGSVC_COLOUR is not a setting and is ignored: the README lists every setting",
        "AUGSVC_QUEUE_DEPHT is not a setting and is ignored: did you mean AUGSVC_QUEUE_DEPTH?",
    ]


PASSWORD = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="@/:#?[]%"),
    min_size=6,
)


@given(password=PASSWORD, user=st.sampled_from(["", "default", "svc"]))
def test_a_masked_url_never_holds_the_password(password, user):
    assume(password not in f"redis://{user}:***@redis.internal:6380/2")
    masked = masked_url(f"redis://{user}:{password}@redis.internal:6380/2")
    assert password not in masked
    assert masked == f"redis://{user}:***@redis.internal:6380/2"
    assert masked_url("redis://redis.internal:6379/0") == "redis://redis.internal:6379/0"
    assert "hunter2" not in masked_url("redis://h/0?password=hunter2")
