"""``augsvc recipe put|get|list|delete``: the recipes REST API from a shell, through the SDK.

Output is the server's JSON, save ``list``: a table of one line a recipe (``--json`` for
the records). An error prints the problem's code, detail and field errors to stderr and
exits 1; a service that does not answer is named by the URL that was tried.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from augsvc_client import Client
from augsvc_client.errors import AugsvcError, DeadlineExceeded, TransportError

TIMEOUT_S = 30.0
OPS_WIDTH = 60  # the ops column is cut here: a table line stays readable in a terminal


def _document(file: str) -> str | bytes:
    """The recipe to send: stdin's bytes (``-``), else the file's path. Neither is parsed
    here: the server reads the document and names what is wrong with it."""
    return sys.stdin.buffer.read() if file == "-" else file


def _call(client: Client, args: argparse.Namespace) -> Any:
    if args.action == "put":
        return client.put_recipe(args.name, _document(args.file))
    if args.action == "get":
        return client.get_recipe(args.ref)
    if args.action == "list":
        return {"recipes": client.list_recipes()}
    if args.action == "delete":
        client.delete_recipe(args.name)
        return None
    raise ValueError(f"unknown action {args.action!r}")


def describe(error: AugsvcError, url: str | None = None) -> str:
    """One line for the problem, then one per field error. A service that gave no answer
    is named by ``url``, with the two ways to point at another one."""
    if url is not None and isinstance(error, TransportError | DeadlineExceeded):
        return (
            f"no answer from the service at {url} ({error.detail}): is `augsvc serve`"
            " running there? Point at another with --url or AUGSVC_URL"
        )
    status = f"HTTP {error.status} " if error.status else ""
    lines = [f"{status}{error.code}: {error.detail}"]
    lines += [f"  {field}" for field in error.errors]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        with Client(args.url, args.api_key, timeout=TIMEOUT_S) as client:
            result = _call(client, args)
    except AugsvcError as error:
        print(f"augsvc recipe: {describe(error, args.url)}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # a missing file, a document that does not parse
        print(f"augsvc recipe: {exc}", file=sys.stderr)
        return 1
    if result is None:
        print(f"deleted {args.name}", file=sys.stderr)
        return 0
    if args.action == "list" and not args.json:
        print(table(result["recipes"]) if result["recipes"] else "", end="")
        if not result["recipes"]:
            print(f"augsvc recipe: no recipes stored at {args.url}", file=sys.stderr)
        return 0
    print(json.dumps(result, indent=2))
    return 0


def ops_summary(document: Any) -> str:
    """The recipe's op names in order, a composite's members in brackets, cut to
    OPS_WIDTH characters."""

    def names(ops: Any) -> list[str]:
        shown = []
        for op in ops if isinstance(ops, list) else []:
            name = str(op.get("op", "?")) if isinstance(op, dict) else "?"
            members = op.get("ops") if isinstance(op, dict) else None
            shown.append(f"{name}({', '.join(names(members))})" if members else name)
        return shown

    ops = document.get("ops") if isinstance(document, dict) else None
    text = ", ".join(names(ops)) or "-"
    return text if len(text) <= OPS_WIDTH else text[: OPS_WIDTH - 3] + "..."


def table(records: list[dict[str, Any]]) -> str:
    """One line for each recipe's latest version, by name: name, version, short digest
    (12 hex digits, as git shortens), its ops."""
    rows = [("NAME", "VERSION", "DIGEST", "OPS")]
    rows += [
        (r["name"], str(r["version"]), r["digest"].removeprefix("sha256:")[:12],
         ops_summary(r.get("recipe")))
        for r in sorted(records, key=lambda r: r["name"])
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + f"  {row[3]}\n"
        for row in rows
    )
