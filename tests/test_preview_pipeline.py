"""A preview is /v1/augment of one image n times: each tile is the bytes /v1/augment gives
that image at that sample key, because both run the one batch pipeline."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.imagegen import jpeg_bytes

RECIPE = {
    "ops": [
        {"op": "random_resized_crop", "size": 48, "scale": [0.2, 1.0]},
        {"op": "hflip"},
        {"op": "color_jitter", "brightness": 0.4, "saturation": 0.4},
    ]
}


@pytest.fixture(scope="module")
def server(start_augsvc):
    srv = start_augsvc()
    with srv.client() as client:
        assert client.put("/v1/recipes/tiles", json=RECIPE).status_code == 201
    return srv


def tiles(png: bytes, n: int, columns: int, gap: int, side: int) -> list[np.ndarray]:
    grid = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    out = []
    for i in range(n):
        r, c = divmod(i, columns)
        top, left = gap + r * (side + gap), gap + c * (side + gap)
        out.append(grid[top : top + side, left : left + side])
    return out


@pytest.mark.parametrize("seed", [0, 7])
def test_each_preview_tile_is_the_augment_output_at_its_key(server, seed):
    photo = jpeg_bytes(640, 480, seed=3)  # large enough that crops decode DCT-scaled
    n = 6
    with server.client() as client:
        preview = client.post(
            "/v1/recipes/tiles/preview",
            params={"n": n, "seed": seed},
            content=photo,
            headers={"Content-Type": "image/jpeg"},
        )
        assert preview.status_code == 200, preview.text
        files = [("image", (f"{i}.jpg", photo, "image/jpeg")) for i in range(n)]
        augmented = client.post(
            "/v1/augment",
            params={"recipe": "tiles", "seed": seed},
            files=files,
            headers={"Accept": "application/zip"},
        )
        assert augmented.status_code == 200, augmented.text
        draft = client.post(
            "/v1/preview",
            params={"n": n, "seed": seed},
            files={
                "recipe": (None, json.dumps(RECIPE), "application/json"),
                "image": ("p.jpg", photo, "image/jpeg"),
            },
        )
    assert draft.content == preview.content  # a draft previews as its stored version
    archive = zipfile.ZipFile(io.BytesIO(augmented.content))
    expected = [
        np.asarray(Image.open(io.BytesIO(archive.read(f"{i:06d}.png"))).convert("RGB"))
        for i in range(n)
    ]
    columns = int(preview.headers["X-Augsvc-Grid-Columns"])
    gap = int(preview.headers["X-Augsvc-Grid-Gap"])
    got = tiles(preview.content, n, columns, gap, 48)
    for i in range(n):
        assert np.array_equal(got[i], expected[i]), f"tile {i} differs from key {i}"
    assert not all(np.array_equal(got[0], t) for t in got[1:])  # the keys differ


def test_a_phone_photo_previews_at_the_default_n(server):
    """A 12-megapixel JPEG under a training crop: each tile decodes at the scale its crop
    needs (1/4 or 1/8), so the default 16 tiles fit; a recipe that keeps every tile at
    full size is a 413 that says to lower n."""
    photo = jpeg_bytes(4000, 3000, seed=5)
    with server.client() as client:
        crop = {"ops": [{"op": "random_resized_crop", "size": 224}, {"op": "hflip"}]}
        assert client.put("/v1/recipes/phone-crop", json=crop).status_code == 201
        full = {"ops": [{"op": "rotate", "degrees": 10}]}
        assert client.put("/v1/recipes/phone-full", json=full).status_code == 201
        ok = client.post(
            "/v1/recipes/phone-crop/preview",
            content=photo,
            headers={"Content-Type": "image/jpeg"},
        )
        assert ok.status_code == 200, ok.text
        grid = Image.open(io.BytesIO(ok.content))
        assert grid.size == (4 * 224 + 5 * 4, 4 * 224 + 5 * 4)  # 16 tiles, 4 columns
        refused = client.post(
            "/v1/recipes/phone-full/preview",
            content=photo,
            headers={"Content-Type": "image/jpeg"},
        )
        assert refused.status_code == 413, refused.text
        assert "lower n" in refused.json()["detail"]
