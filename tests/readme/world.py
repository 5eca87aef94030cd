"""What the README's examples may assume exists: what a fresh clone holds, and nothing
the README does not create itself.

* The working directory is a fresh clone's root as far as the examples read it: the
  shipped ``examples/`` folder (``cat.jpg``, ``dog.jpg``, ``recipe.yaml`` and the
  ``imagenet`` ImageFolder tree), copied from this checkout. Every README block runs
  there, in order, so a file or a recipe an earlier block creates is there for a later
  one, as for a reader working down the page.
* The server is started as the walkthrough starts it: ``AUGSVC_DATA_ROOTS`` is that
  clone's ``examples`` folder. It holds no recipe and no dataset until a block puts one.
* In object storage, which no README block can create: the shipped ``imagenet`` tree
  under ``s3://my-team-datasets/imagenet``, the one allowed prefix
  (``AUGSVC_DATA_URLS``), on a loopback S3 server.
* The server's URL stands in for the README's ``http://127.0.0.1:8000``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

README_URLS = ("http://127.0.0.1:8000", "http://localhost:8000")

BUCKET = "my-team-datasets"
DATA_URLS = f"s3://{BUCKET}/imagenet"


def clone(folder: Path) -> Path:
    """``folder`` made to hold what a fresh clone's root holds for the examples: the
    ``examples`` folder. Returns the data root the walkthrough's server is started with."""
    shutil.copytree(EXAMPLES, folder / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    return folder / "examples"


def upload_dataset(bucket_root: Path) -> None:
    """The shipped ImageFolder tree, as objects under ``s3://my-team-datasets/imagenet``."""
    shutil.copytree(EXAMPLES / "imagenet", bucket_root / BUCKET / "imagenet")
