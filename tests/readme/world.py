"""What the README's examples may assume exists, keyed by the names they use.

* Files in the example's working directory: ``cat.jpg`` and ``dog.jpg`` (the bundled
  photo and a crop of it, as JPEG), ``a.jpg``, ``b.png`` and ``recipe.yaml``.
* On the server: recipe ``train`` at version 3 (examples pin ``train@3``) and the
  folder datasets ``imagenet`` and ``imagenet-train`` (12 photo crops, 3 classes).
* In object storage: the same crops under ``s3://my-team-datasets/imagenet``, the one
  allowed prefix (``AUGSVC_DATA_URLS``), on a loopback S3 server.
* The server's URL stands in for the README's ``http://127.0.0.1:8000``.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import yaml
from PIL import Image

from tests.photos import photo

README_URLS = ("http://127.0.0.1:8000", "http://localhost:8000")

#: ``train``: what a reader's recipe.yaml would hold; its output has one size, so it
#: can be answered as one tensor and streamed.
TRAIN_RECIPE = {
    "ops": [
        {"op": "random_resized_crop", "size": [32, 32], "scale": [0.5, 1.0]},
        {"op": "hflip", "p": 0.5},
    ]
}
TRAIN_HISTORY = (  # versions 1 and 2, before the current one
    {"ops": [{"op": "resize", "size": [32, 32]}]},
    {"ops": [{"op": "hflip"}, {"op": "resize", "size": [32, 32]}]},
)
DATASETS = ("imagenet", "imagenet-train")
DATASET_IMAGES = 12


def _encode(height: int, width: int, fmt: str, top: int = 0, left: int = 0) -> bytes:
    big = photo().permute(1, 2, 0).numpy()
    crop = big[top:, left:]
    image = Image.fromarray(crop).resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, fmt, quality=90) if fmt == "JPEG" else image.save(buffer, fmt)
    return buffer.getvalue()


def files() -> dict[str, bytes]:
    return {
        "cat.jpg": _encode(375, 500, "JPEG"),
        "dog.jpg": _encode(240, 320, "JPEG", top=60, left=100),
        "a.jpg": _encode(120, 160, "JPEG", top=30),
        "b.png": _encode(90, 120, "PNG", left=200),
        "recipe.yaml": yaml.safe_dump(TRAIN_RECIPE, sort_keys=False).encode(),
    }


def write_files(folder: Path) -> None:
    for name, data in files().items():
        (folder / name).write_bytes(data)


def write_dataset(root: Path) -> Path:
    """An ImageFolder tree of photo crops under ``root``."""
    for i in range(DATASET_IMAGES):
        folder = root / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:03d}.jpg").write_bytes(_encode(48, 64, "JPEG", top=i * 20, left=i * 25))
    return root


BUCKET = "my-team-datasets"
DATA_URLS = f"s3://{BUCKET}/imagenet"


def seed_server(url: str, dataset_root: Path) -> None:
    """Recipes, datasets and one augment request (so /metrics has every series)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for recipe in (*TRAIN_HISTORY, TRAIN_RECIPE):
            client.put("/v1/recipes/train", json=recipe).raise_for_status()
        assert client.get("/v1/recipes/train").json()["version"] == 3
        for name in DATASETS:
            body = {"kind": "folder", "path": str(dataset_root)}
            client.put(f"/v1/datasets/{name}", json=body).raise_for_status()
        upload = [("image", ("cat.jpg", files()["cat.jpg"], "image/jpeg"))]
        answer = client.post("/v1/augment", params={"recipe": "train", "seed": 0}, files=upload)
        answer.raise_for_status()
