"""``augsvc serve | recipe | augment | bench``.

Each subcommand imports what it needs when it runs, so ``augsvc --help`` is instant
and ``augsvc bench`` works without the service's dependencies being exercised.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _serve(args: argparse.Namespace) -> int:
    from augsvc.api.server import serve

    return serve(host=args.host, port=args.port, log_level=args.log_level)


def _recipe(args: argparse.Namespace) -> int:
    from augsvc.api.recipe_cli import run

    return run(args)


def _augment(args: argparse.Namespace) -> int:
    from augsvc.augment_cli import run

    return run(args)


def _bench(args: argparse.Namespace) -> int:
    from augsvc.bench import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="augsvc", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service (settings from AUGSVC_* env)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=_serve)

    recipe = sub.add_parser("recipe", help="manage recipes on a running service")
    recipe.add_argument("--url", default="http://127.0.0.1:8000")
    recipe.add_argument("--api-key", default=None, help="or AUGSVC_API_KEY")
    rsub = recipe.add_subparsers(dest="action", required=True)
    put = rsub.add_parser("put", help="create or update NAME from a JSON/YAML file")
    put.add_argument("name")
    put.add_argument("file")
    get = rsub.add_parser("get", help="print a recipe (name, name@N or sha256:...)")
    get.add_argument("ref")
    rsub.add_parser("list", help="list recipes")
    delete = rsub.add_parser("delete", help="delete every version of NAME")
    delete.add_argument("name")
    recipe.set_defaults(func=_recipe)

    augment = sub.add_parser("augment", help="augment local image files in-process")
    augment.add_argument("--recipe", required=True, help="recipe JSON/YAML file")
    augment.add_argument("--seed", type=int, default=0)
    augment.add_argument("--offset", type=int, default=0)
    augment.add_argument("--device", default="auto")
    augment.add_argument("--out", required=True, help="output folder (PNG files)")
    augment.add_argument("images", nargs="+")
    augment.set_defaults(func=_augment)

    bench = sub.add_parser("bench", help="throughput against peers on the same images")
    bench.add_argument("target", choices=["engine", "service", "stream"])
    bench.add_argument("--batch", type=int, default=64)
    bench.add_argument("--repeats", type=int, default=7, help="timed batches per contender")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--json", default=None, help="also write results to this JSON file")
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
