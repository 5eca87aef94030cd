"""Shell examples, run statement by statement in one bash, with their comments checked.

A block is cut into statements (a line, its ``\\`` continuations and here-documents);
comment lines between statements are prose. Two kinds of comment are claims:

* ``# -> 201 {"name":"flip",...}`` on the line after a statement: the last HTTP status
  its curl got, and (when given) the response body it printed, ``...`` standing for
  anything;
* a comment at the end of a statement that names image files
  (``unzip -l out.zip  # 000000.png 000001.png, each 224x224``): the statement prints
  exactly those image names, and with a ``WxH`` size each of them (found in the working
  directory or in a zip archive the statement names) has that size.

Without a status claim, every HTTP request a statement makes must succeed (< 400), so
an example cannot quietly print a problem document. ``curl`` is wrapped to report its
status on stderr (``-sS`` hides the progress meter); ``open`` and ``xdg-open`` fetch
their URL instead of starting a browser, which checks the page the README points to.
"""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

STATUS_LINE = re.compile(r"^readme-test: http (\d{3})$", re.MULTILINE)
RESULT_CLAIM = re.compile(r"^#\s*->\s*(?P<status>\d{3})\b\s*(?P<body>.*)$")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(?P<word>\w+)\1")
IMAGE_NAME = re.compile(r"[\w./-]+\.(?:png|jpe?g|webp)\b")
SIZE = re.compile(r"\b(?P<w>\d+)\s*[x×]\s*(?P<h>\d+)\b")
ARCHIVE_NAME = re.compile(r"[\w./-]+\.zip\b")

PRELUDE = r"""
set -u
readme_test_status='%{stderr}readme-test: http %{http_code}\n'
curl() { command curl -sS --write-out "$readme_test_status" "$@"; }
readme_test_open() {
  local url
  for url in "$@"; do
    command curl -fsS -o /dev/null --write-out "$readme_test_status" "$url" || return
  done
}
open() { readme_test_open "$@"; }
xdg-open() { readme_test_open "$@"; }
"""


@dataclass
class Statement:
    line: int  # 1-based, in the README
    text: str
    trailing: str = ""  # the comment at the end of its last command line
    result: re.Match[str] | None = None  # a "# -> STATUS body" claim on the next line


@dataclass
class Outcome:
    rc: int
    stdout: str
    stderr: str  # without the status lines
    statuses: list[int] = field(default_factory=list)


def trailing_comment(line: str) -> str:
    """The ``# comment`` at the end of a command line (outside quotes), or ''."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[i + 1 :].strip()
    return ""


def statements(code: str, first_line: int) -> list[Statement]:
    lines = code.splitlines()
    out: list[Statement] = []
    i = 0
    while i < len(lines):
        text = lines[i].strip()
        if not text:
            i += 1
            continue
        if text.startswith("#"):
            claim = RESULT_CLAIM.match(text)
            if claim and out:
                out[-1].result = claim
            i += 1
            continue
        start, words, last = i, [], lines[i]
        while True:
            last = lines[i]
            words += [m["word"] for m in HEREDOC.finditer(last)]
            if not last.rstrip().endswith("\\") or i + 1 >= len(lines):
                break
            i += 1
        for word in words:  # here-document bodies, in order
            i += 1
            while i < len(lines) and lines[i].strip() != word:
                i += 1
        i += 1
        out.append(
            Statement(
                first_line + start, "\n".join(lines[start:i]), trailing=trailing_comment(last)
            )
        )
    return out


def script(stmts: list[Statement], outdir: Path) -> str:
    """Bash that runs each statement with its output in ``outdir/<n>.*`` and stops at
    the first that fails."""
    parts = [PRELUDE]
    for n, stmt in enumerate(stmts):
        parts.append(
            f'{{ {stmt.text}\n}} >"{outdir}/{n}.out" 2>"{outdir}/{n}.err"\n'
            f'readme_test_rc=$?; echo "$readme_test_rc" >"{outdir}/{n}.rc"\n'
            f'[ "$readme_test_rc" -eq 0 ] || exit "$readme_test_rc"\n'
        )
    return "".join(parts)


def run(stmts: list[Statement], cwd: Path, env: dict[str, str], timeout: float) -> list[Outcome]:
    """Run the statements in ``cwd``; one Outcome per statement that ran."""
    outdir = Path(tempfile.mkdtemp(prefix=".readme-test-", dir=cwd))  # one per block
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script(stmts, outdir)],
        cwd=cwd, env=env, timeout=timeout, check=False,
    )  # fmt: skip
    outcomes = []
    for n in range(len(stmts)):
        if not (outdir / f"{n}.rc").exists():
            break
        err = (outdir / f"{n}.err").read_text(errors="replace")
        outcomes.append(
            Outcome(
                rc=int((outdir / f"{n}.rc").read_text()),
                stdout=(outdir / f"{n}.out").read_text(errors="replace"),
                stderr=STATUS_LINE.sub("", err).strip(),
                statuses=[int(s) for s in STATUS_LINE.findall(err)],
            )
        )
    return outcomes


def body_pattern(claimed: str) -> re.Pattern[str]:
    """A claimed response body as a pattern: exact text, ``...`` matching anything."""
    return re.compile(".*?".join(re.escape(part) for part in claimed.split("...")), re.DOTALL)


def _image(name: str, cwd: Path, archives: list[Path]) -> Image.Image | None:
    if (cwd / name).is_file():
        return Image.open(cwd / name)
    for archive in archives:
        with zipfile.ZipFile(archive) as zf:
            if name in zf.namelist():
                return Image.open(io.BytesIO(zf.read(name)))
    return None


def check(stmt: Statement, outcome: Outcome, cwd: Path, where: str) -> None:
    """AssertionError unless the statement did what the README says it does."""
    context = f"{where}: `{stmt.text.splitlines()[0]}`"
    assert outcome.rc == 0, f"{context} exited {outcome.rc}:\n{outcome.stderr}\n{outcome.stdout}"
    if stmt.result is not None:
        status = int(stmt.result["status"])
        assert outcome.statuses and outcome.statuses[-1] == status, (
            f"{context}: the README says {status}, the server answered {outcome.statuses}:\n"
            f"{outcome.stdout}"
        )
        body = stmt.result["body"].strip()
        if body:
            assert body_pattern(body).fullmatch(outcome.stdout.strip()), (
                f"{context}: the README shows the answer as\n{body}\nthe server sent\n"
                f"{outcome.stdout.strip()}"
            )
    else:
        failed = [s for s in outcome.statuses if s >= 400]
        assert not failed, f"{context}: HTTP {failed}:\n{outcome.stdout}\n{outcome.stderr}"
    claimed = IMAGE_NAME.findall(stmt.trailing)
    if not claimed:
        return
    printed = IMAGE_NAME.findall(outcome.stdout)
    assert sorted(set(printed)) == sorted(set(claimed)), (
        f"{context}: the README says it shows {claimed}, it printed:\n{outcome.stdout}"
    )
    size = SIZE.search(stmt.trailing)
    if size is None:
        return
    archives = [cwd / a for a in ARCHIVE_NAME.findall(stmt.text) if (cwd / a).is_file()]
    want = (int(size["w"]), int(size["h"]))
    for name in claimed:
        image = _image(name, cwd, archives)
        assert image is not None, f"{context}: {name} is neither a file nor in {archives}"
        assert image.size == want, f"{context}: {name} is {image.size}, the README says {want}"
