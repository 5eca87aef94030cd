"""The SDK covers what a new user reaches for, against a real `augsvc serve`: the URL and
key from the environment, datasets, a preview of one's own image, samples of different
sizes, and ``augment_iter`` over generators and IterableDatasets."""

from __future__ import annotations

import asyncio
import io
import uuid
import zipfile

import httpx
import numpy as np
import pytest
import torch
from augsvc_client import AsyncClient, Client, errors
from PIL import Image

from tests.imagegen import jpeg_bytes
from tests.sdk_integration.keys import ADMIN_KEY

pytestmark = pytest.mark.slow

#: Keeps each size and channel count.
GEOMETRY = {
    "ops": [{"op": "rotate", "degrees": 15}, {"op": "hflip"}],
    "output": {"channels": "auto"},
}
FIXED = {
    "ops": [{"op": "rotate", "degrees": 15}, {"op": "resize", "size": [16, 20]}],
    "output": {"channels": 3},
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def images(n: int) -> list[np.ndarray]:
    """n HWC uint8 images of three sizes, one grey."""
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        h, w = (24, 32) if i % 3 == 0 else (30, 20) if i % 3 == 1 else (16, 16)
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out.append(image[..., :1] if i == 1 else image)
    return out


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sdk-data")
    for label in ("a", "b"):
        (root / "set" / label).mkdir(parents=True)
        for i in range(3):
            (root / "set" / label / f"{i}.jpg").write_bytes(jpeg_bytes(40, 30, seed=i))
    return root


@pytest.fixture(scope="module")
def server_url(start_augsvc, data_root):
    return start_augsvc(AUGSVC_DATA_ROOTS=str(data_root), AUGSVC_API_KEYS=f"{ADMIN_KEY}:admin").url


@pytest.fixture
def env_client(server_url, monkeypatch):
    """A Client given nothing: URL and key come from the environment."""
    monkeypatch.setenv("AUGSVC_URL", server_url)
    monkeypatch.setenv("AUGSVC_API_KEY", ADMIN_KEY)
    with Client() as client:
        yield client


def test_url_and_key_come_from_the_environment(env_client, server_url, monkeypatch):
    assert env_client.base_url == server_url
    assert isinstance(env_client.ops(), list)
    with Client(api_key="") as keyless, pytest.raises(errors.Unauthorized):
        keyless.ops()  # an explicit empty key sends none, whatever the environment says
    monkeypatch.delenv("AUGSVC_URL")
    with Client() as default:
        assert default.base_url == "http://127.0.0.1:8000"

    async def main() -> int:
        async with AsyncClient() as client:
            return len(await client.ops())

    monkeypatch.setenv("AUGSVC_URL", server_url)
    assert asyncio.run(main()) > 0


def test_datasets_put_get_list_delete(env_client, data_root):
    name = unique("sdk-ds")
    record = env_client.put_dataset(name, "folder", str(data_root / "set"))
    assert record["size"] == 6 and record["classes"] == ["a", "b"]
    assert record["created_at"].endswith("Z")
    assert env_client.get_dataset(name) == record
    assert record in env_client.list_datasets()
    with pytest.raises(errors.PathNotAllowed):
        env_client.put_dataset(unique("sdk-ds"), path="/etc")
    env_client.delete_dataset(name)
    with pytest.raises(errors.DatasetNotFound):
        env_client.get_dataset(name)
    with pytest.raises(errors.DatasetNotFound):
        env_client.delete_dataset(name)


def test_preview_of_ones_own_image(env_client, server_url):
    name = unique("sdk-preview")
    env_client.put_recipe(name, FIXED)
    own = jpeg_bytes(64, 48, seed=3)
    grid = env_client.preview(name, seed=2, n=4, image=own)
    direct = httpx.post(
        f"{server_url}/v1/recipes/{name}/preview", params={"seed": 2, "n": 4}, content=own,
        headers={"Content-Type": "image/jpeg", "Authorization": f"Bearer {ADMIN_KEY}"},
    )  # fmt: skip
    direct.raise_for_status()
    assert grid == direct.content and grid.startswith(b"\x89PNG")
    assert grid != env_client.preview(name, seed=2, n=4)  # the bundled photo's grid
    array = np.asarray(Image.open(io.BytesIO(jpeg_bytes(64, 48, seed=3))))
    assert env_client.preview(name, seed=2, n=4, image=array).startswith(b"\x89PNG")


def test_output_list_receives_samples_of_different_sizes(env_client, server_url):
    name = unique("sdk-list")
    env_client.put_recipe(name, GEOMETRY)
    inputs = images(5)
    with pytest.raises(errors.ValidationFailed, match="application/zip"):
        env_client.augment(inputs, recipe=name, seed=4)  # one tensor cannot hold them
    batch = env_client.augment(inputs, recipe=name, seed=4, offset=10, output="list")
    assert [img.shape for img in batch.images] == [
        (img.shape[2], img.shape[0], img.shape[1]) for img in inputs
    ]
    assert batch.keys.tolist() == [10, 11, 12, 13, 14] and batch.seed == 4
    assert all(img.dtype == np.uint8 for img in batch.images)
    # the same pixels as the zip the HTTP API answers
    files = [("image", (f"{i}.png", _png(img), "image/png")) for i, img in enumerate(inputs)]
    answer = httpx.post(
        f"{server_url}/v1/augment", params={"recipe": name, "seed": 4, "offset": 10},
        files=files, headers={"Accept": "application/zip", "Authorization": f"Bearer {ADMIN_KEY}"},
    )  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        for i, entry in enumerate(sorted(archive.namelist())):
            hwc = np.asarray(Image.open(io.BytesIO(archive.read(entry))))
            expected = hwc[np.newaxis] if hwc.ndim == 2 else np.moveaxis(hwc, -1, 0)
            np.testing.assert_array_equal(batch.images[i], expected)
    # with one size, the list holds the tensor's samples
    same = [img for img in inputs if img.shape == (24, 32, 3)]
    listed = env_client.augment(same, recipe=name, seed=4, output="list")
    stacked = env_client.augment(same, recipe=name, seed=4)
    np.testing.assert_array_equal(np.stack(listed.images), stacked.images)
    with pytest.raises(ValueError, match="return_params"):
        env_client.augment(same, recipe=name, seed=4, output="list", return_params=True)


def _png(hwc: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc).save(out, format="PNG")
    return out.getvalue()


class Photos(torch.utils.data.IterableDataset):
    """A torch IterableDataset: it has __getitem__ (from Dataset) but cannot be indexed."""

    def __init__(self, items: list) -> None:
        self.items = items

    def __iter__(self):
        return iter(self.items)


def test_augment_iter_takes_any_iterable(env_client):
    name = unique("sdk-iter")
    env_client.put_recipe(name, FIXED)
    labelled = [(img, i % 3) for i, img in enumerate(images(7))]

    def run(dataset) -> list:
        return list(env_client.augment_iter(dataset, batch_size=3, recipe=name, seed=9,
                                            prefetch=2))  # fmt: skip

    indexed = run(labelled)
    for dataset in ((item for item in labelled), Photos(labelled), iter(labelled)):
        batches = run(dataset)
        assert [b.keys.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
        for got, want in zip(batches, indexed, strict=True):
            np.testing.assert_array_equal(got.images, want.images)
            np.testing.assert_array_equal(got.labels, want.labels)

    async def main() -> list:
        async with AsyncClient() as client:
            generator = (item for item in labelled)
            return [b async for b in client.augment_iter(generator, 3, name, seed=9)]

    for got, want in zip(asyncio.run(main()), indexed, strict=True):
        np.testing.assert_array_equal(got.images, want.images)
        np.testing.assert_array_equal(got.keys, want.keys)

    ragged = list(
        env_client.augment_iter(
            (img for img in images(4)), batch_size=2, recipe={"ops": [{"op": "hflip"}]},
            seed=1, output="list",
        )
    )  # fmt: skip
    assert [len(b) for b in ragged] == [2, 2] and ragged[1].keys.tolist() == [2, 3]
