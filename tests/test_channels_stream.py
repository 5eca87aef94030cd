"""Streams of folders that mix grey, colour and alpha images: every frame holds, for
each sample, the engine's output for that file alone with the stream's key; a batch
whose samples end with different channel counts ends the stream with a typed 422
frame naming output.channels, never an ``internal`` one."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augsvc.datasets import epoch_order, sample_keys
from augsvc.datasets.stream import StreamRequest
from augsvc.engine import compile_plan
from augsvc.recipes import parse_recipe
from tests.imagegen import png_bytes
from tests.mixes import alone_file, assert_in_documented_range, files, recipes
from tests.stream_frames import split_frames

STREAM_PROPERTY = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("mixed-channels")


@pytest.fixture(scope="module")
def server(start_augsvc, data_root):
    return start_augsvc(AUGSVC_DATA_ROOTS=str(data_root))


def register(server, data_root, named_files, recipe) -> str:
    """A new flat folder dataset (files sorted by name = index order) and a stored recipe,
    both under one new name."""
    name = f"mix-{uuid.uuid4().hex[:12]}"
    folder = data_root / name
    folder.mkdir()
    for file_name, data in named_files:
        (folder / file_name).write_bytes(data)
    with server.client() as c:
        r = c.put(f"/v1/datasets/{name}", json={"kind": "folder", "path": str(folder)})
        assert r.status_code == 201, r.text
        r = c.put(f"/v1/recipes/{name}", json=recipe)
        assert r.status_code == 201, r.text
    return name


def stream(server, dataset, recipe, **params) -> list[tuple[dict, dict]]:
    query = {"recipe": recipe, **params}
    with server.client() as c:
        r = c.get(f"/v1/datasets/{dataset}/stream", params=query)
    assert r.status_code == 200, r.text
    return list(split_frames([r.content]))


@STREAM_PROPERTY
@given(
    named_files=files(min_size=1, max_size=8),
    recipe=recipes(fixed_size=True, channels=st.sampled_from(["auto", "auto", 1, 3, 4])),
    seed=st.integers(0, 2**63),
    epoch=st.integers(0, 5),
    batch_size=st.integers(1, 5),
)
def test_stream_frames_equal_each_file_alone(
    server, data_root, named_files, recipe, seed, epoch, batch_size
):
    dataset = ref = register(server, data_root, named_files, recipe)
    plan = compile_plan(parse_recipe(recipe))
    got = stream(server, dataset, ref, seed=seed, epoch=epoch, batch_size=batch_size)

    order = epoch_order(len(named_files), seed, epoch)
    batches = StreamRequest(seed=seed, epoch=epoch, batch_size=batch_size).batches(len(named_files))
    for k, positions in enumerate(batches):
        indices = order[positions]
        keys = sample_keys(epoch, positions).tolist()
        want = [
            alone_file(plan, *named_files[i], seed, key)
            for i, key in zip(indices, keys, strict=True)
        ]
        tensors, meta = got[k]
        if len({w.shape for w in want}) > 1:  # one size is fixed: the channels differ
            assert {w.shape[1:] for w in want} == {tuple(recipe["output"]["size"])}
            assert meta["error"] == "validation-failed", meta
            assert "output.channels" in meta["detail"]
            assert len(got) == k + 1
            return
        assert "error" not in meta, meta
        assert tensors["indices"].tolist() == indices.tolist()
        assert meta["position"] == str(int(positions[0]))
        assert np.array_equal(tensors["images"], np.stack([w.numpy() for w in want]))
        for w in want:
            assert_in_documented_range(plan, w)
    assert len(got) == len(batches)


def test_grey_and_rgb_of_one_size_end_the_stream_with_a_typed_error(server, data_root):
    """The reported case: a folder of grey and RGB images of one size under
    ``channels: auto``; with ``output.channels: 3`` the same folder streams whole."""
    from augsvc_client import Client
    from augsvc_client.errors import ValidationFailed

    named = [(f"{i}.png", png_bytes(32, 32, "L" if i % 2 else "RGB", seed=i)) for i in range(6)]
    recipe = {"ops": [{"op": "random_resized_crop", "size": 16}], "output": {"channels": "auto"}}
    dataset = ref = register(server, data_root, named, recipe)
    got = stream(server, dataset, ref, seed=0, batch_size=6)
    assert len(got) == 1 and got[0][1]["error"] == "validation-failed"
    assert "output.channels: 3" in got[0][1]["detail"]
    with Client(server.url) as client, pytest.raises(ValidationFailed, match=r"output\.channels"):
        for _ in client.stream(dataset, ref, seed=0, batch_size=6):
            pass

    with server.client() as c:
        fixed = c.put("/v1/recipes/rgb-crop", json={"ops": recipe["ops"]})  # 3, the default
        assert fixed.status_code == 201, fixed.text
    frames = stream(server, dataset, "rgb-crop", seed=0, batch_size=4)
    assert [t["images"].shape for t, _ in frames] == [(4, 3, 16, 16), (2, 3, 16, 16)]
