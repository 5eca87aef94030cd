"""Small datasets of every local kind written to disk, for tests that register them on a
real server and then break their files (delete, truncate, replace)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from tests.imagegen import jpeg_bytes, png_bytes

#: What COCO test images declare and are.
W, H = 50, 40
#: A recipe every stream of these datasets can use (one output size).
RECIPE = {"ops": [{"op": "resize", "size": [16, 16]}]}


def start_dataset_server(start_augsvc: Any, root: Path) -> Any:
    """A server whose datasets lie under ``root``, rendering one frame ahead (so a file
    broken after the first frame is read after it), with the ``small`` recipe stored."""
    srv = start_augsvc(AUGSVC_DATA_ROOTS=str(root), AUGSVC_STREAM_PREFETCH="1")
    with srv.client() as c:
        assert c.put("/v1/recipes/small", json=RECIPE).status_code == 201
    return srv


def folder(root: Path, n: int = 6) -> Path:
    """An ImageFolder tree of two classes."""
    for i in range(n):
        cls = root / f"class{i % 2}"
        cls.mkdir(parents=True, exist_ok=True)
        (cls / f"{i:03d}.jpg").write_bytes(jpeg_bytes(W, H, seed=i))
    return root


def coco_image(i: int, width: int = W, height: int = H) -> dict[str, Any]:
    return {"id": 100 + i, "file_name": f"{i:03d}.png", "width": width, "height": height}


def coco_annotation(i: int, **fields: Any) -> dict[str, Any]:
    """A valid annotation of image i (a polygon inside the image), changed by ``fields``."""
    polygon = [2, 2, 30, 2, 30, 20, 2, 20]
    return {"id": 7 + i, "image_id": 100 + i, "category_id": 1, "bbox": [2, 2, 28, 18],
            "segmentation": [polygon], **fields}  # fmt: skip


def coco(root: Path, n: int = 6, document: dict[str, Any] | None = None) -> dict[str, str]:
    """Images and an annotations file; the registration body that names them."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / "images" / f"{i:03d}.png").write_bytes(png_bytes(W, H, seed=i))
    if document is None:
        document = {
            "images": [coco_image(i) for i in range(n)],
            "annotations": [coco_annotation(i) for i in range(n)],
            "categories": [{"id": 1, "name": "thing"}],
        }
    write_json(root / "instances.json", document)
    return {
        "kind": "coco",
        "path": str(root / "images"),
        "annotations": str(root / "instances.json"),
    }


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document))


def paired(root: Path, n: int = 6) -> Path:
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / "images" / f"{i:03d}.png").write_bytes(png_bytes(W, H, seed=i))
        (root / "masks" / f"{i:03d}.png").write_bytes(png_bytes(W, H, seed=i, mode="L"))
    return root


def shards(root: Path, n: int = 6, per_shard: int = 3) -> Path:
    """WebDataset shards of ``per_shard`` labelled samples each."""
    root.mkdir(parents=True, exist_ok=True)
    for s in range(0, n, per_shard):
        with tarfile.open(root / f"shard-{s // per_shard}.tar", "w") as tar:
            for i in range(s, min(n, s + per_shard)):
                for name, blob in ((f"k{i:03d}.jpg", jpeg_bytes(W, H, seed=i)),
                                   (f"k{i:03d}.cls", str(i % 2).encode())):  # fmt: skip
                    info = tarfile.TarInfo(name)
                    info.size = len(blob)
                    tar.addfile(info, io.BytesIO(blob))
    return root
