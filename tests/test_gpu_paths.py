"""The CUDA path beyond one size and one mode (skipped without CUDA; ``make gpu-check``
runs them): sizes, lists, mixed outputs, every padding and interpolation, float output,
grey and RGBA, invariance to split and crowd on the device, threads with their own
streams, the packed uploads and pinned ring, the batched copy down, the fixed-point
mean, syncs per batch, device validation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from augsvc.bench.gpu_probes import count_syncs
from augsvc.engine import augment, compile_plan, resolve_device
from augsvc.maths.colour import exact_means
from augsvc.maths.transfer import StagingRing, to_host, upload_packed, upload_params
from augsvc.recipes import parse_recipe
from augsvc.service.device_threads import bind_thread, warm_up_batch
from tests.chains import BENCH_CHAIN
from tests.photos import photo, photo_batch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

CUDA = torch.device("cuda")
CROP = [*BENCH_CHAIN["ops"][:3], {"op": "random_resized_crop", "size": [64, 80]}]


def _plan(ops, **output):
    return compile_plan(parse_recipe({"ops": ops, "output": output}))


def _sizes():
    return [photo(h, w) for h, w in ((120, 160), (200, 150), (90, 300), (375, 500), (64, 64))]


def _close(got, want, levels=1.0):
    got = list(got) if isinstance(got, torch.Tensor) else got
    want = list(want) if isinstance(want, torch.Tensor) else want
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        scale = 255.0 if g.is_floating_point() else 1.0
        diff = float((g.cpu().double() - w.double()).abs().max()) * scale
        assert diff <= levels, f"CPU and CUDA differ by {diff} grey levels"


@pytest.mark.parametrize(
    "output",
    [
        {},
        {"interpolation": "nearest"},
        {"interpolation": "bicubic"},
        {"padding_mode": "border"},
        {"padding_mode": "reflection"},
        {"fill": [255, 0, 0]},
    ],
    ids=["default", "nearest", "bicubic", "border", "reflection", "fill"],
)
def test_cuda_matches_cpu_over_sizes_and_modes(output):
    plan = _plan(CROP, **output)
    images = _sizes()
    _close(augment(plan, images, seed=3, device=CUDA).images,
           augment(plan, images, seed=3, device="cpu").images)  # fmt: skip


def test_cuda_matches_cpu_for_grey_rgba_mixed_outputs_and_float():
    mixed = [photo(60, 80)[:1], torch.cat([photo(100, 90), photo(100, 90)[:1]]), photo(50, 50)]
    for plan in (
        _plan([{"op": "rotate", "degrees": 20}], size=[48, 48], channels=4),
        _plan([{"op": "rotate", "degrees": 20}], channels="auto"),  # own size and channels
        _plan([*CROP, {"op": "normalize", "mean": [0.5], "std": [0.25]}], channels=3),
    ):
        got = augment(plan, mixed, seed=5, device=CUDA).images
        want = augment(plan, mixed, seed=5, device="cpu").images
        # normalised by std 0.25: one grey level is 4 / 255 of the float range
        _close(got, want, levels=4.0 if plan.out_dtype == "float32" else 1.0)


@pytest.mark.parametrize("ops", [BENCH_CHAIN["ops"], [*CROP, {"op": "gaussian_blur",
                                 "kernel_size": 5, "sigma": [0.1, 2.0], "p": 1.0}]],
                         ids=["contrast", "blur"])  # fmt: skip
def test_split_and_crowd_invariance_on_the_device(ops):
    plan = _plan(ops)
    images = photo_batch(24)
    whole = augment(plan, images, seed=4, device=CUDA).images
    for cut in (1, 5, 17):
        head = augment(plan, images[:cut], seed=4, device=CUDA).images
        tail = augment(plan, images[cut:], seed=4, offset=cut, device=CUDA).images
        split = torch.cat([head, tail])
        assert torch.equal(whole, split)
    crowd = augment(plan, [photo(90, 70), images[3], photo(300, 200)], seed=4, keys=[7, 3, 8],
                    device=CUDA).images  # fmt: skip
    assert torch.equal(crowd[1], whole[3])


def test_the_fixed_point_mean_is_the_same_bits_on_both_devices_and_any_batch():
    x = torch.rand(64, 3, 50_000) * 300 - 20
    on_cpu = exact_means(x)
    assert torch.equal(exact_means(x.to(CUDA)).cpu(), on_cpu)
    for n in (1, 7, 33):
        assert torch.equal(exact_means(x[:n].to(CUDA)).cpu(), on_cpu[:n])


def test_threads_with_their_own_streams_equal_serial():
    plan = _plan(BENCH_CHAIN["ops"])
    images = _sizes() * 4
    serial = [augment(plan, images, seed=s, device=CUDA).images for s in range(6)]
    streams = set()

    def job(seed):
        streams.add(torch.cuda.current_stream().stream_id)
        out = augment(plan, images, seed=seed, device=CUDA).images
        torch.cuda.current_stream().synchronize()  # done before another stream reads it
        return out

    with ThreadPoolExecutor(3, initializer=bind_thread, initargs=(CUDA,)) as pool:
        parallel = list(pool.map(job, range(6)))
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel, strict=True))
    assert torch.cuda.default_stream().stream_id not in streams


def test_packed_uploads_and_the_ring_survive_the_caller_reusing_its_buffers():
    ring_crops = [torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8) for h, w in
                  ((5, 7), (20, 30), (1, 1))]  # fmt: skip
    up = upload_packed(ring_crops, CUDA)
    for crop in ring_crops:
        crop.zero_()  # the caller reuses its memory at once
    torch.cuda.synchronize()
    assert all(bool((u != 0).any()) for u in up[:2])
    ring = StagingRing(slots=2)  # five uploads: each slot reused after its event
    host = torch.arange(1 << 21, dtype=torch.int64).remainder(256).to(torch.uint8)
    outs = [ring.upload(host, CUDA) for _ in range(5)]
    assert all(torch.equal(o.cpu(), host) for o in outs)
    a = np.random.default_rng(0).normal(size=(9, 3, 3))
    got = upload_params({"a": a, "s": np.arange(9.0)}, CUDA)
    assert torch.equal(got["a"].cpu(), torch.as_tensor(a, dtype=torch.float32))
    assert torch.equal(got["s"].cpu(), torch.arange(9.0))


def test_one_copy_down_gives_every_image():
    plan = _plan([{"op": "rotate", "degrees": 20}])
    result = augment(plan, _sizes(), seed=1, device=CUDA)
    assert isinstance(result.images, list)
    assert all(torch.equal(a, b.cpu()) for a, b in zip(to_host(result.images), result.images,
                                                        strict=True))  # fmt: skip


def test_syncs_per_batch_do_not_grow_with_the_batch():
    from augsvc.bench.gpu_probes import Probe

    probe = Probe(CUDA, quick=True)
    plan = _plan(BENCH_CHAIN["ops"])
    images = probe.mixed(64)
    augment(plan, images[:8], seed=0, device=CUDA)
    small = count_syncs(probe, lambda: augment(plan, images[:16], seed=0, device=CUDA))
    large = count_syncs(probe, lambda: augment(plan, images, seed=0, device=CUDA))
    assert large <= small, (small, large)


def test_devices_beyond_those_present_are_refused_and_the_warm_up_runs():
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
    done = []

    def warm():
        bind_thread(CUDA)
        warm_up_batch(CUDA)
        done.append(torch.cuda.current_stream().stream_id != torch.cuda.default_stream().stream_id)

    thread = threading.Thread(target=warm)
    thread.start()
    thread.join()
    assert done == [True]
