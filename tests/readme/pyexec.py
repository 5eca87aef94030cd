"""Run one Python example in a fresh namespace, with its claims checked (pyclaims) and
the names it leaves undefined provided (names).

It runs in the calling process (a fresh interpreter per example would cost a torch
import each, several seconds), in the current directory; tracebacks point into the
README, since the code is compiled under the README's path with its line numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.readme.names import provide
from tests.readme.pyclaims import CHECK, check_claim, free_names, instrument


def run_example(
    source: str, name: str, path: Path, first_line: int, session: dict[str, Any] | None = None
) -> None:
    """Run ``source``, which starts on line ``first_line`` of ``path`` (shown as ``name``);
    raises what the example raises, ClaimError for a claim that does not hold.

    ``session`` is the namespace of the blocks run before it (a reader's interpreter
    session), updated in place; names neither it nor the example define are provided."""
    tree = instrument(source, name, first_line)
    namespace = session if session is not None else {}
    namespace |= {"__name__": "__readme__", CHECK: check_claim}
    namespace |= provide(free_names(tree) - namespace.keys())
    exec(compile(tree, str(path), "exec"), namespace)
