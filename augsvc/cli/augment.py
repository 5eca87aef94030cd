"""``augsvc augment``: run a recipe over local image files in-process and write PNGs.

The same engine, seeds and sample keys as the service, without a server: the i-th input
is written as its sample key ``offset + i``, zero-padded to six digits (``000005.png`` for
key 5; the service's zip numbers its files by position instead), byte-identical to what
POST /v1/augment returns for that image at that key: the quickest way to try a recipe.

``--recipe`` is a local JSON/YAML file or, when no such file exists, a stored reference
(``name``, ``name@3``, ``sha256:...``) fetched from the service at ``--url``: the
pixels are still computed here, from the stored canonical document, so they equal the
service's. Without ``--seed`` a random 63-bit seed is drawn, as the service draws one,
and printed so the run can be repeated.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any

import numpy as np

from augsvc.cli.recipe import TIMEOUT_S, describe
from augsvc.errors import AugsvcError, InvalidReference
from augsvc.recipes.documents import read_document, syntax_of
from augsvc.recipes.refs import parse_ref

MAX_PIXELS = 200_000_000  # local files are trusted more than uploads, but not unboundedly
#: What one run may hold: a local run answers to its user, not to a shared server, so
#: the bound is the machine's sense, not a tenant's share.
MAX_JOB_BYTES = 16 * 1024**3


def load_document(path: Path) -> Any:
    """A recipe file (JSON, or YAML by suffix); InvalidRecipe naming the file when its
    syntax is wrong."""
    return read_document(path.read_bytes(), syntax_of(path.name), source=str(path))


def fetch_document(ref: str, url: str, api_key: str | None) -> Any:
    """The canonical document of a stored recipe, through the SDK."""
    from augsvc_client import Client

    with Client(url, api_key, timeout=TIMEOUT_S) as client:
        return client.get_recipe(ref)["recipe"]


def recipe_document(args: argparse.Namespace) -> Any:
    """The recipe of ``--recipe``: a file when one exists at that path, else a stored
    reference (a malformed one is refused before any request, naming both readings)."""
    path = Path(args.recipe)
    if path.exists():
        return load_document(path)
    try:
        parse_ref(args.recipe)
    except InvalidReference:
        raise InvalidReference(
            f"--recipe {args.recipe!r} is neither an existing file nor a stored recipe"
            " reference (name, name@version or sha256:<64 hex>)"
        ) from None
    return fetch_document(args.recipe, args.url, args.api_key)


def run(args: argparse.Namespace) -> int:
    from augsvc_client.errors import AugsvcError as ClientError

    from augsvc.engine import compile_plan, resolve_device
    from augsvc.pipeline import BatchJob, EncodedBatch, File, Limits, MemoryBudget, run_batch
    from augsvc.pipeline.encoders import FilesEncoder
    from augsvc.recipes import parse_recipe

    if args.seed is None:
        args.seed = secrets.randbits(63)  # as the service: 63 bits fit any signed int64
    encoder = FilesEncoder("png", lambda _i, key: f"{key:06d}.png")
    try:
        plan = compile_plan(parse_recipe(recipe_document(args)))
        files = [File(bytearray(Path(p).read_bytes()), Path(p).name) for p in args.images]
        job = BatchJob(
            plan=plan,
            seed=args.seed,
            keys=np.arange(args.offset, args.offset + len(files), dtype=np.int64),
            device=resolve_device(args.device),
            limits=Limits(len(files), MAX_PIXELS, MAX_PIXELS),
            budget=MemoryBudget(MAX_JOB_BYTES, MAX_JOB_BYTES),
            encoder=encoder,
            what=f"{len(files)} images",
            lower="the number of images per run or the recipe's output size",
            offset=args.offset,
        )
        run_batch(job, EncodedBatch(files))
    except AugsvcError as err:
        print(f"augsvc augment: {err.detail}", file=sys.stderr)
        for field in err.errors:
            print(f"  {field.path}: {field.msg}", file=sys.stderr)
        return 1
    except ClientError as error:  # the stored recipe could not be fetched
        print(f"augsvc augment: {describe(error, args.url)}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # missing file, bad JSON/YAML, bad device
        print(f"augsvc augment: {exc}", file=sys.stderr)
        return 1
    print(f"augsvc augment: seed {args.seed} (--seed {args.seed} repeats this run)",
          file=sys.stderr)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for source, (name, data) in zip(args.images, encoder.files, strict=False):
        target = out / name
        target.write_bytes(data)
        print(f"{source} -> {target}")
    return 0
