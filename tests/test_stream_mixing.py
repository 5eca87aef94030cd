"""MixUp / CutMix in dataset streams, against a real server: the mixed stream is the
unmixed stream mixed with each sample's partner (by the SDK's maths), and it resumes
and re-shards byte for byte, soft targets included."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from augsvc_client import Client
from augsvc_client.regularization import Mixup, mix_images, mix_targets

from augsvc.datasets import epoch_order, sample_keys
from augsvc.datasets.mixing import partner_positions
from tests.imagegen import jpeg_bytes, png_bytes
from tests.stream_frames import frames

N_IMAGES = 90
N_CLASSES = 3
SEED = 23
SIZE = 20
RECIPE = {
    "ops": [
        {"op": "rotate", "degrees": 10},
        {"op": "random_resized_crop", "size": SIZE, "scale": [0.5, 1.0]},
        {"op": "hflip"},
    ]
}
MIX = {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "mix_prob": 0.9, "label_smoothing": 0.1}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mixdata")
    for i in range(N_IMAGES):
        folder = root / "train" / f"class{i % N_CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        data = png_bytes(30, 26, seed=i) if i % 3 == 0 else jpeg_bytes(30, 26, seed=i)
        (folder / f"{i:03d}.{'png' if i % 3 == 0 else 'jpg'}").write_bytes(data)
    (root / "flat").mkdir()
    for i in range(4):
        (root / "flat" / f"{i}.png").write_bytes(png_bytes(16, 16, seed=i))
    (root / "shards").mkdir()
    with tarfile.open(root / "shards" / "s0.tar", "w") as tar:
        for i in range(4):
            for name, blob in ((f"k{i}.png", png_bytes(16, 16, seed=i)), (f"k{i}.cls", b"1")):
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    return root


@pytest.fixture(scope="module")
def server(start_augsvc, data_root):
    srv = start_augsvc(AUGSVC_DATA_ROOTS=str(data_root))
    with srv.client() as c:
        assert c.put("/v1/recipes/mix-test", json=RECIPE).status_code == 201
        for name, kind in (("train", "folder"), ("flat", "folder"), ("shards", "webdataset")):
            spec = {"kind": kind, "path": str(data_root / name)}
            assert c.put(f"/v1/datasets/{name}", json=spec).status_code == 201
    return srv


def stream(server, dataset="train", **params) -> list[tuple[dict, dict]]:
    query = {"recipe": "mix-test", "seed": SEED, "batch_size": 8, **params}
    with server.client() as c, c.stream("GET", f"/v1/datasets/{dataset}/stream", params=query) as r:
        assert r.status_code == 200, r.read()
        return list(frames(r))


def by_index(got) -> dict[int, dict[str, object]]:
    """Per dataset index: its image bytes, soft target bytes, lambda, partner, position."""
    out: dict[int, dict[str, object]] = {}
    for tensors, meta in got:
        world, first = int(meta["world_size"]), int(meta["position"])
        for i, idx in enumerate(tensors["indices"].tolist()):
            assert idx not in out, f"index {idx} streamed twice"
            row = {"image": tensors["images"][i], "position": first + i * world,
                   "label": int(tensors["labels"][i])}  # fmt: skip
            if "soft_targets" in tensors:
                row.update(soft_targets=tensors["soft_targets"][i], lam=float(tensors["lam"][i]),
                           partner=int(tensors["partners"][i]))  # fmt: skip
            out[idx] = row
    return out


def test_a_mixed_sample_is_its_render_mixed_with_its_partners_render(server):
    plain = by_index(stream(server))
    mixed = by_index(stream(server, **MIX))
    order = epoch_order(N_IMAGES, SEED, 0)
    assert set(mixed) == set(plain) == set(range(N_IMAGES))
    positions = np.array([mixed[i]["position"] for i in range(N_IMAGES)])
    partners = order[partner_positions(N_IMAGES, SEED, 0, positions)]
    assert [mixed[i]["partner"] for i in range(N_IMAGES)] == partners.tolist()
    assert (partners != np.arange(N_IMAGES)).all()  # a derangement ...
    assert sorted(partners.tolist()) == list(range(N_IMAGES))  # ... of the whole epoch
    # the SDK's Mixup in elem mode, keyed like the stream, reports the same draws
    sdk = Mixup(0.8, 1.0, prob=0.9, mode="elem", label_smoothing=0.1, num_classes=N_CLASSES,
                seed=SEED)  # fmt: skip
    params = sdk.params(sample_keys(0, positions), (SIZE, SIZE))
    np.testing.assert_array_equal(params.lam, [mixed[i]["lam"] for i in range(N_IMAGES)])
    a = torch.from_numpy(np.stack([plain[i]["image"] for i in range(N_IMAGES)]))
    b = torch.from_numpy(np.stack([plain[int(p)]["image"] for p in partners]))
    want = mix_images(a, b, params)
    got = torch.from_numpy(np.stack([mixed[i]["image"] for i in range(N_IMAGES)]))
    assert torch.equal(got, want)  # byte for byte
    labels = torch.tensor([plain[i]["label"] for i in range(N_IMAGES)])
    targets = mix_targets(labels, labels[torch.from_numpy(partners)], params, N_CLASSES, 0.1)
    got_targets = np.stack([mixed[i]["soft_targets"] for i in range(N_IMAGES)])
    assert got_targets.dtype == np.float32
    np.testing.assert_array_equal(got_targets, targets.numpy())
    np.testing.assert_allclose(got_targets.sum(1), 1.0, atol=2e-6)
    assert params.cutmix.sum() > 10 and (~params.cutmix & params.applied).sum() > 10
    assert 0 < (~params.applied).sum() < 25  # mix_prob 0.9


def _assert_same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for idx in a:
        assert a[idx]["image"].tobytes() == b[idx]["image"].tobytes()
        assert a[idx]["soft_targets"].tobytes() == b[idx]["soft_targets"].tobytes()
        assert (a[idx]["lam"], a[idx]["partner"]) == (b[idx]["lam"], b[idx]["partner"])


def test_mixed_stream_resumed_at_k_with_world_size_2_then_3_is_the_uninterrupted_run(server):
    mix = {**MIX, "cutmix_minmax": [0.3, 0.8]}
    k = 34
    uninterrupted = by_index([f for r in range(2)
                              for f in stream(server, rank=r, world_size=2, **mix)])  # fmt: skip
    order = epoch_order(N_IMAGES, SEED, 0)
    rest = {i: row for i, row in uninterrupted.items() if i in set(order[k:].tolist())}
    resumed = by_index([f for r in range(3)
                        for f in stream(server, rank=r, world_size=3, start=k, batch_size=5,
                                        **mix)])  # fmt: skip
    _assert_same(resumed, rest)
    assert sum(row["lam"] < 1.0 for row in resumed.values()) > 0.5 * len(resumed)


def test_epochs_pick_new_partners(server):
    e0, e1 = by_index(stream(server, **MIX)), by_index(stream(server, epoch=1, **MIX))
    assert sum(e0[i]["partner"] != e1[i]["partner"] for i in e0) > 0.8 * N_IMAGES


def test_the_sdk_reads_mixed_frames_and_resumes_with_the_same_mixing(server):
    raw = stream(server, **MIX)
    with Client(server.url) as client:
        batches = list(client.stream("train", "mix-test", seed=SEED, batch_size=8, mix=MIX))
    assert len(batches) == len(raw)
    for batch, (tensors, _) in zip(batches, raw, strict=True):
        np.testing.assert_array_equal(batch.images, tensors["images"])
        np.testing.assert_array_equal(batch.soft_targets, tensors["soft_targets"])
        np.testing.assert_array_equal(batch.lam, tensors["lam"])
        np.testing.assert_array_equal(batch.partners, tensors["partners"])
        np.testing.assert_array_equal(batch.labels, tensors["labels"])
    with Client(server.url) as client:
        plain = next(iter(client.stream("train", "mix-test", seed=SEED, batch_size=8)))
    assert plain.soft_targets is None and plain.lam is None and plain.partners is None


@pytest.mark.parametrize(
    ("dataset", "params", "field"),
    [
        ("train", {"mixup_alpha": -0.5}, "mixup_alpha"),
        ("train", {"cutmix_alpha": "nan"}, "cutmix_alpha"),
        ("train", {"mixup_alpha": 1, "mix_prob": 1.5}, "mix_prob"),
        ("train", {"mixup_alpha": 1, "label_smoothing": 1}, "label_smoothing"),
        ("train", {"cutmix_minmax": [0.2]}, "cutmix_minmax"),
        ("train", {"cutmix_minmax": [0.8, 0.2]}, "cutmix_minmax"),
        ("train", {"mixup_alpha": 1, "num_classes": 2}, "num_classes"),
        ("train", {"mixup_alpha": 1, "num_classes": 0}, "num_classes"),
        ("train", {"mixup_alpha": 1, "num_classes": 600_000, "batch_size": 64}, "num_classes"),
        ("shards", {"mixup_alpha": 1}, "num_classes"),  # .cls labels name no classes
        ("flat", {"cutmix_alpha": 1}, "cutmix_alpha"),  # no labels to mix
    ],
)
def test_bad_mixing_parameters_are_a_422_naming_the_field(server, dataset, params, field):
    query = {"recipe": "mix-test", "seed": 1, **params}
    with server.client() as c:
        r = c.get(f"/v1/datasets/{dataset}/stream", params=query)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert any(field in e["loc"] for e in problem["errors"]), problem
    assert field in problem["detail"]


def test_a_labelled_tar_mixes_once_num_classes_is_given(server):
    got = stream(server, dataset="shards", mixup_alpha=1, num_classes=2, batch_size=4)
    ((tensors, _),) = got
    assert tensors["soft_targets"].shape == (4, 2)
    np.testing.assert_allclose(tensors["soft_targets"][:, 1], 1.0)  # every label is 1


def test_the_torch_dataset_hands_out_the_mixing_fields(server):
    from augsvc_client.torch_data import AugsvcIterableDataset
    from torch.utils.data import DataLoader

    dataset = AugsvcIterableDataset(server.url, "train", "mix-test", seed=SEED, batch_size=8,
                                    rank=0, world_size=1, mix=MIX)  # fmt: skip
    items = list(DataLoader(dataset, batch_size=None, num_workers=0))
    raw = stream(server, **MIX)
    assert len(items) == len(raw)
    for item, (tensors, _) in zip(items, raw, strict=True):
        for name in ("images", "labels", "soft_targets", "lam", "partners"):
            assert torch.equal(item[name], torch.from_numpy(tensors[name])), name
