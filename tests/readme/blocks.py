"""Code blocks of a Markdown file, with their language and ``readme-test`` markers.

A block that cannot run in a test (it needs Docker, blocks forever, installs into the
environment) is marked on the line right before its fence::

    <!-- readme-test: skip (needs a Kubernetes cluster) -->

so every skip is written where the reader sees the block, with its reason. Indented code
blocks are reported as their own kind: they have no language, so they must be fenced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

MARKER = re.compile(r"<!--\s*readme-test:(?P<body>.*?)-->", re.DOTALL)
SKIP = re.compile(r"\s*skip\s*\((?P<reason>[^()]*\S[^()]*)\)\s*$")

#: fence language -> how the harness treats the block
KINDS = {
    "python": "python",
    "py": "python",
    "sh": "shell",
    "bash": "shell",
    "shell": "shell",
    "json": "document",
    "yaml": "document",
    "yml": "document",
    "promql": "promql",
    "text": "text",
}


@dataclass(frozen=True)
class Block:
    path: Path
    name: str  # the file as tests show it, e.g. clients/python/README.md
    line: int  # 1-based line of the opening fence
    lang: str  # the fence's language, lower case; "" unlabeled, "indented" for indented code
    code: str
    skip: str | None  # the marker's reason

    @property
    def kind(self) -> str:
        """python, shell, document, promql, text, or unknown."""
        return KINDS.get(self.lang, "unknown")

    @property
    def where(self) -> str:
        return f"{self.name}:{self.line}"

    @property
    def first_line(self) -> str:
        """The first line with a word in it that is not a comment (names the block in
        test ids)."""
        for line in self.code.splitlines():
            text = line.strip()
            if re.search(r"\w", text) and not text.startswith(("#", "//")):
                return text
        return ""


@dataclass(frozen=True)
class MarkerProblem:
    name: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.name}:{self.line}: {self.message}"


def read_blocks(path: Path, name: str) -> tuple[list[Block], list[MarkerProblem]]:
    """Every code block of ``path`` (shown as ``name``) in order, and every marker that
    is malformed or not right above a code block."""
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    blocks: list[Block] = []
    problems: list[MarkerProblem] = []
    pending: tuple[int, str] | None = None  # (line after the marker, reason)
    for token in tokens:
        if token.map is None:
            continue
        start, end = token.map
        if token.type == "html_block" and "readme-test:" in token.content:
            if pending is not None:
                problems.append(MarkerProblem(name, pending[0], "marker without a code block"))
            match = MARKER.search(token.content)
            skip = SKIP.match(match.group("body")) if match else None
            if skip is None:
                problems.append(
                    MarkerProblem(
                        name, start + 1, "write markers as <!-- readme-test: skip (reason) -->"
                    )
                )
                pending = None
            else:
                pending = (end, skip.group("reason").strip())
            continue
        if token.type in ("fence", "code_block"):
            lang = token.info.split()[0].lower() if token.info.strip() else ""
            if token.type == "code_block":
                lang = "indented"
            reason = None
            if pending is not None:
                if pending[0] == start:
                    reason = pending[1]
                else:
                    problems.append(
                        MarkerProblem(name, pending[0], "marker not right above a code block")
                    )
                pending = None
            blocks.append(Block(path, name, start + 1, lang, token.content, reason))
        elif pending is not None:
            problems.append(MarkerProblem(name, pending[0], "marker not right above a code block"))
            pending = None
    if pending is not None:
        problems.append(MarkerProblem(name, pending[0], "marker without a code block"))
    return blocks, problems


def block_ids(blocks: list[Block]) -> list[str]:
    """Test ids from each block's file, language and first line (not its position, so
    ids stay put when text above a block changes); repeats get a counter."""
    seen: dict[str, int] = {}
    ids = []
    for block in blocks:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", block.first_line)[:48].strip("-") or "empty"
        base = f"{block.name}:{block.lang or 'unlabeled'}:{slug}"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids
