"""``augsvc augment``: run a recipe over local image files in-process and write PNGs.

The same engine, seeds and sample keys as the service, without a server: output
``<offset+i>.png`` for the i-th input is byte-identical to what POST /v1/augment returns
for that image at that key, which makes this the quickest way to try a recipe.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from augsvc.errors import AugsvcError
from augsvc.recipes.documents import read_document, syntax_of

MAX_PIXELS = 200_000_000  # local files are trusted more than uploads, but not unboundedly


def load_document(path: Path) -> Any:
    """A recipe file (JSON, or YAML by suffix); InvalidRecipe naming the file when its
    syntax is wrong."""
    return read_document(path.read_bytes(), syntax_of(path.name), source=str(path))


def run(args: argparse.Namespace) -> int:
    from augsvc.codec import encode_png, probe_image
    from augsvc.decode_plan import plan_decode
    from augsvc.engine import augment, compile_plan, resolve_device
    from augsvc.recipes import parse_recipe

    try:
        plan = compile_plan(parse_recipe(load_document(Path(args.recipe))))
        device = resolve_device(args.device)
        headers = [
            probe_image(Path(p).read_bytes(), max_pixels=MAX_PIXELS, name=Path(p).name)
            for p in args.images
        ]
        keys = range(args.offset, args.offset + len(headers))
        images = plan_decode(plan, headers, seed=args.seed, keys=list(keys)).decode()
        result = augment(plan, images, seed=args.seed, offset=args.offset, device=device)
    except AugsvcError as err:
        print(f"augsvc augment: {err.detail}", file=sys.stderr)
        for field in err.errors:
            print(f"  {field.path}: {field.msg}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # missing file, bad JSON/YAML, bad device
        print(f"augsvc augment: {exc}", file=sys.stderr)
        return 1
    if plan.out_dtype != "uint8":
        print("augsvc augment: the recipe outputs float32; PNG needs uint8", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    outputs = result.images if isinstance(result.images, list) else result.images.unbind(0)
    for key, source, img in zip(result.keys.tolist(), args.images, outputs, strict=True):
        target = out / f"{key:06d}.png"
        target.write_bytes(encode_png(img.cpu()))
        print(f"{source} -> {target}")
    return 0
