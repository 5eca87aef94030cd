"""``augsvc bench {engine,service,stream,targets}``: throughput against peers on the same images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from augsvc.bench.photos import BenchDependencyError, bench_photos

__all__ = ["BenchDependencyError", "bench_photos", "run"]


def _measure(args: argparse.Namespace):
    chain = getattr(args, "chain", "default")
    sizes = getattr(args, "sizes", None)
    if args.target == "engine" and sizes:
        from augsvc.bench.sizes import parse_sizes, run_sizes_bench

        return run_sizes_bench(parse_sizes(sizes), batch=args.batch, repeats=args.repeats,
                               device=args.device, chain=chain)  # fmt: skip
    if args.target == "targets":
        from augsvc.bench.targets import run_targets_bench

        return run_targets_bench(batch=args.batch, repeats=args.repeats, device=args.device)
    if args.target == "engine":
        from augsvc.bench.engine import run_engine_bench

        return run_engine_bench(batch=args.batch, repeats=args.repeats, device=args.device,
                                chain=chain)  # fmt: skip
    from augsvc.bench.service import run_service_bench, run_stream_bench
    from augsvc.bench.sizes import parse_sizes

    size = parse_sizes(sizes)[0] if sizes else (375, 500)
    bench = run_service_bench if args.target == "service" else run_stream_bench
    return bench(batch=args.batch, repeats=args.repeats, device=args.device, size=size,
                 chain=chain, port=args.port)  # fmt: skip


def _report(args: argparse.Namespace) -> int:
    result = _measure(args)
    print(result.markdown())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


def run(args: argparse.Namespace) -> int:
    target = args.target
    try:
        return _report(args)
    except (BenchDependencyError, ValueError) as exc:
        print(f"augsvc bench {target}: {exc}", file=sys.stderr)
        return 1
