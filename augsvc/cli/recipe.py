"""``augsvc recipe put|get|list|delete``: the recipes REST API from a shell, over httpx.

Only httpx and PyYAML are imported, so these commands start instantly and work against
any replica. Output is the server's JSON; a problem+json error prints its detail to
stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from augsvc.recipes.documents import syntax_of

TIMEOUT_S = 30.0


def _headers(api_key: str | None) -> dict[str, str]:
    key = api_key or os.environ.get("AUGSVC_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def _load_document(path: str) -> tuple[bytes, str]:
    """The file's bytes and Content-Type: YAML by suffix (.yaml/.yml), else JSON."""
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    return data, "application/yaml" if syntax_of(path) == "yaml" else "application/json"


def _request(client: httpx.Client, args: argparse.Namespace) -> httpx.Response:
    if args.action == "put":
        body, content_type = _load_document(args.file)
        return client.put(
            f"/v1/recipes/{args.name}", content=body, headers={"Content-Type": content_type}
        )
    if args.action == "get":
        return client.get(f"/v1/recipes/{args.ref}")
    if args.action == "list":
        return client.get("/v1/recipes")
    if args.action == "delete":
        return client.delete(f"/v1/recipes/{args.name}")
    raise ValueError(f"unknown action {args.action!r}")


def _problem_detail(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    detail = f"HTTP {response.status_code} {body.get('code', '')}: {body.get('detail', '')}"
    for err in body.get("errors", []):
        detail += f"\n  {'.'.join(str(p) for p in err.get('loc', []))}: {err.get('msg')}"
    return detail


def run(args: argparse.Namespace) -> int:
    try:
        with httpx.Client(
            base_url=args.url, headers=_headers(args.api_key), timeout=TIMEOUT_S
        ) as client:
            response = _request(client, args)
    except OSError as exc:  # file not found, and httpx's connection errors alike
        print(f"augsvc recipe: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"augsvc recipe: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code >= 400:
        print(f"augsvc recipe: {_problem_detail(response)}", file=sys.stderr)
        return 1
    if response.status_code == 204:
        print(f"deleted {args.name}", file=sys.stderr)
        return 0
    print(json.dumps(response.json(), indent=2))
    return 0
