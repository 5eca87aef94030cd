"""``augsvc recipe put|get|list|delete``: the recipes REST API from a shell, through the SDK.

Output is the server's JSON; an error prints the problem's code, detail and field errors
to stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from augsvc_client import Client
from augsvc_client.errors import AugsvcError

TIMEOUT_S = 30.0


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


def describe(error: AugsvcError) -> str:
    """One line for the problem, then one per field error."""
    status = f"HTTP {error.status} " if error.status else ""
    lines = [f"{status}{error.code}: {error.detail}"]
    lines += [f"  {field}" for field in error.errors]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        with Client(args.url, args.api_key, timeout=TIMEOUT_S) as client:
            result = _call(client, args)
    except AugsvcError as error:
        print(f"augsvc recipe: {describe(error)}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # a missing file, a document that does not parse
        print(f"augsvc recipe: {exc}", file=sys.stderr)
        return 1
    if result is None:
        print(f"deleted {args.name}", file=sys.stderr)
        return 0
    print(json.dumps(result, indent=2))
    return 0
