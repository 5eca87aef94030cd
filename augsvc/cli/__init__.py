"""``augsvc serve | recipe | augment | bench``: the one command line of augsvc.

Each subcommand imports what it needs when it runs, so ``augsvc --help`` is instant.
Options that every command talking to a service shares (``--url``, ``--api-key``) are
accepted after the subcommand too, and default to ``AUGSVC_URL`` / ``AUGSVC_API_KEY``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

DEFAULT_URL = "http://127.0.0.1:8000"
_FROM_ENVIRONMENT = ("url", "api_key")


def _serve(args: argparse.Namespace) -> int:
    from augsvc.cli.serve import serve

    return serve(host=args.host, port=args.port, log_level=args.log_level)


def _recipe(args: argparse.Namespace) -> int:
    from augsvc.cli.recipe import run

    return run(args)


def _augment(args: argparse.Namespace) -> int:
    from augsvc.cli.augment import run

    return run(args)


def _bench(args: argparse.Namespace) -> int:
    from augsvc.bench import run

    return run(args)


def _seed(text: str) -> int:
    """--seed: an integer the service would accept too."""
    value = int(text)
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"seed must be in 0..2**64-1, got {value}")
    return value


def _port(text: str) -> int:
    """--port: 0 (a free port) or a TCP port number."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default in --help (options without one say nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is argparse.SUPPRESS:
            return action.help
        if action.dest in _FROM_ENVIRONMENT:  # their help already names the value in force
            return action.help
        return super()._get_help_string(action)


def _add_service_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--url and --api-key, for every command that talks to a running service.

    They are accepted before the subcommand, after it and after the action alike. Only
    the top level holds the defaults; the deeper copies leave the value alone when not
    given (argparse would otherwise overwrite an earlier one with their own default).
    """
    url = os.environ.get("AUGSVC_URL", DEFAULT_URL)
    parser.add_argument(
        "--url", default=url if defaults else argparse.SUPPRESS,
        help=f"the service's base URL (default: AUGSVC_URL, else {DEFAULT_URL}; now {url})",
    )  # fmt: skip
    key = os.environ.get("AUGSVC_API_KEY") or None
    parser.add_argument(
        "--api-key", default=key if defaults else argparse.SUPPRESS,
        help=f"API key sent as a Bearer token (AUGSVC_API_KEY; now {'set' if key else 'unset'})",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="augsvc", description=__doc__.splitlines()[0], formatter_class=_Help
    )
    _add_service_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="run the HTTP service (settings from AUGSVC_* env)", formatter_class=_Help
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=_serve)

    recipe = sub.add_parser(
        "recipe", help="manage recipes on a running service", formatter_class=_Help
    )
    _add_service_options(recipe, defaults=False)
    rsub = recipe.add_subparsers(dest="action", required=True)
    actions = {
        "put": "create the next version of NAME from a JSON/YAML file ('-' reads stdin)",
        "get": "print a recipe (name, name@N or sha256:...)",
        "list": "list the latest version of every recipe, one line each",
        "delete": "delete every version of NAME",
    }
    for action, summary in actions.items():
        leaf = rsub.add_parser(action, help=summary, description=summary, formatter_class=_Help)
        _add_service_options(leaf, defaults=False)
        if action in ("put", "delete"):
            leaf.add_argument("name")
        if action == "put":
            leaf.add_argument("file")
        if action == "get":
            leaf.add_argument("ref")
        if action == "list":
            leaf.add_argument(
                "--json", action="store_true",
                help="print the records as JSON (the recipes' canonical documents too)",
            )  # fmt: skip
    recipe.set_defaults(func=_recipe)

    augment = sub.add_parser(
        "augment", formatter_class=_Help, help="augment local image files in-process"
    )
    _add_service_options(augment, defaults=False)
    augment.add_argument(
        "--recipe", required=True,
        help="a recipe JSON/YAML file, or a stored reference (name, name@N, sha256:...) "
        "fetched from --url",
    )  # fmt: skip
    augment.add_argument(
        "--seed", type=_seed, default=None,
        help="0..2**64-1; default: a random one, printed (as the service draws one)",
    )  # fmt: skip
    augment.add_argument("--offset", type=int, default=0, help="sample key of the first image")
    augment.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    augment.add_argument(
        "--out", required=True,
        help="output folder: one PNG a sample, named by its key (000005.png for key 5)",
    )  # fmt: skip
    augment.add_argument("images", nargs="+")
    augment.set_defaults(func=_augment)

    bench = sub.add_parser(
        "bench", formatter_class=_Help, help="throughput against peers on the same images"
    )
    bench.add_argument("target", choices=["engine", "service", "stream", "targets"])
    bench.add_argument("--batch", type=int, default=64)
    bench.add_argument("--repeats", type=int, default=7, help="timed batches per contender")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    bench.add_argument("--json", default=None, help="also write results to this JSON file")
    bench.add_argument(
        "--port", type=_port, default=0,
        help="service and stream: the port their augsvc serve binds on 127.0.0.1 (0 = a free one)",
    )  # fmt: skip
    bench.add_argument(
        "--sizes",
        default=None,
        help="WIDTHxHEIGHT[,...] input photo sizes: engine gives a row per size and a mixed-"
        "size row; service and stream use the first",
    )
    bench.add_argument(
        "--chain",
        default="default",
        choices=["default", "crop", "randaugment", "trivialaugment"],
        help="default: rotate, crop, flip, colour jitter; crop: random_resized_crop(224, "
        "scale 0.08-1) and hflip, torchvision's defaults; randaugment / trivialaugment: "
        "crop, flip, then rand_augment(2, 9) / trivial_augment_wide",
    )
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader went away (`augsvc recipe get x | head`): stop quietly, as Unix tools
        # do. Point stdout at /dev/null so the interpreter's final flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
