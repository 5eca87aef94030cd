"""The server's stream mixing and the SDK's Mixup are separate copies (the SDK never imports
augsvc): the same (seed, keys, settings) give the same draws, pixels and soft targets, and
the SDK reads every field of a mixed frame."""

from __future__ import annotations

import numpy as np
import torch
from augsvc_client.regularization import Mixup, mix_images, mix_targets
from augsvc_client.wire import decode_stream_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc import codec
from augsvc.datasets import mixing

specs = st.builds(
    mixing.MixSpec,
    mixup_alpha=st.sampled_from([0.0, 1e-300, 0.05, 0.2, 0.8, 1.0, 3.0, 1e6]),
    cutmix_alpha=st.sampled_from([0.0, 0.5, 1.0]),
    cutmix_minmax=st.sampled_from([None, (0.2, 0.8), (0.0, 1.0)]),
    prob=st.sampled_from([0.3, 1.0]),
    switch_prob=st.sampled_from([0.0, 0.5, 1.0]),
    correct_lam=st.booleans(),
    label_smoothing=st.sampled_from([0.0, 0.1]),
    num_classes=st.integers(2, 9),
).filter(lambda s: s.enabled)


def _sdk(spec: mixing.MixSpec, seed: int) -> Mixup:
    return Mixup(
        spec.mixup_alpha, spec.cutmix_alpha, spec.cutmix_minmax, spec.prob, spec.switch_prob,
        "elem", spec.correct_lam, spec.label_smoothing, spec.num_classes, seed=seed,
    )  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(
    spec=specs,
    seed=st.integers(0, 2**64 - 1),
    keys=st.lists(st.integers(0, 2**62), min_size=1, max_size=24),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    data=st.data(),
)
def test_server_and_sdk_mix_alike(spec, seed, keys, h, w, data):
    keys = np.array(keys, dtype=np.int64)
    server = mixing.draw(spec, seed, keys, h, w)
    sdk = _sdk(spec, seed).params(keys, (h, w))
    np.testing.assert_array_equal(server.lam, sdk.lam)
    np.testing.assert_array_equal(server.cutmix, sdk.cutmix)
    np.testing.assert_array_equal(server.box, sdk.box)
    n = len(keys)
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31)))
    a = torch.randint(0, 256, (n, 3, h, w), generator=gen, dtype=torch.uint8)
    b = torch.randint(0, 256, (n, 3, h, w), generator=gen, dtype=torch.uint8)
    assert torch.equal(mixing.mix_images(a, b, server), mix_images(a, b, sdk))
    y = torch.randint(0, spec.num_classes, (n,), generator=gen)
    y2 = torch.randint(0, spec.num_classes, (n,), generator=gen)
    assert torch.equal(
        mixing.soft_targets(y, y2, server.lam, spec),
        mix_targets(y, y2, sdk, spec.num_classes, spec.label_smoothing),
    )


def test_the_sdk_reads_the_mixing_fields_of_a_frame():
    tensors = {
        "images": torch.zeros((2, 3, 4, 4), dtype=torch.uint8),
        "indices": torch.tensor([5, 9]),
        "labels": torch.tensor([1, 0]),
        "soft_targets": torch.tensor([[0.25, 0.75], [0.6, 0.4]], dtype=torch.float32),
        "lam": torch.tensor([0.75, 0.4], dtype=torch.float64),
        "partners": torch.tensor([9, 5]),
    }
    meta = {"epoch": "0", "batch": "0", "position": "4", "digest": "sha256:x"}
    blob = codec.images_to_safetensors(tensors, meta)
    for output in ("numpy", "torch"):
        batch = decode_stream_frame(blob, output)
        for name in ("soft_targets", "lam", "partners", "labels", "indices"):
            got = getattr(batch, name)
            got = got.numpy() if output == "torch" else got
            np.testing.assert_array_equal(got, tensors[name].numpy())
            assert got.dtype == tensors[name].numpy().dtype
