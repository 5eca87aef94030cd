"""The first-run checks of the CUDA path, one function each, for ``augsvc.bench.gpu_check``.

Each probe takes a :class:`Probe` context and returns a :class:`Finding`: whether the
property holds, a one-line detail and the figures behind it. A probe that needs CUDA
says so (``Skip``) on another device; the rest also run on the CPU, which is how the
suite keeps them working on machines without a GPU (a dry run of their own logic).

What they look for, and why each matters on a GPU:

- syncs and kernel launches per batch, for a small and a four times larger batch of
  mixed input sizes: a host sync per stage or per size group, or launches that grow
  with the batch, leave the device idle between kernels;
- split and crowd invariance on the device: CUDA reductions pick their shape from the
  output count, so a per-image statistic can change its last bits with the batch;
- CPU against the device within one grey level, over interpolation, padding, fill,
  perspective, antialias factors, channel mixes and float32 output;
- threads sharing the device give what one thread gives;
- the encoders' device-to-host copies, the batched nvJPEG decode rate against the
  CPU's, an out-of-range ``cuda:N`` refused, and an out-of-memory answered 503.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from augsvc.codec import decode_image, sample_photo_bytes
from augsvc.engine import Plan, augment, compile_plan, resolve_device
from augsvc.recipes import parse_recipe

CLASSIC_CHAIN = [
    {"op": "rotate", "degrees": 30},
    {"op": "random_resized_crop", "size": 224},
    {"op": "hflip"},
    {"op": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
]


class Skip(Exception):
    """The probe does not apply on this device (the reason is the message)."""


@dataclass
class Finding:
    ok: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Probe:
    """What every probe shares: the device, the batch sizes (small under ``quick``, for
    dry runs) and the sample photo resized on demand."""

    device: torch.device
    quick: bool = False
    _sizes: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def batch(self) -> int:
        return 8 if self.quick else 256

    def image(self, h: int, w: int) -> torch.Tensor:
        if (h, w) not in self._sizes:
            photo = decode_image(sample_photo_bytes(), max_pixels=10**8)
            x = F.interpolate(photo[None].float(), size=(h, w), mode="bilinear", antialias=True)
            self._sizes[h, w] = x.round().clamp(0, 255).to(torch.uint8)[0]
        return self._sizes[h, w]

    def mixed(self, n: int, seed: int = 0) -> list[torch.Tensor]:
        """ImageNet-like sizes: 40% 375x500, the rest one side 500, the other 250-500.
        Quick runs use smaller pictures of the same aspect ratios."""
        rng = np.random.default_rng(seed)
        div = 4 if self.quick else 1
        out = []
        for _ in range(n):
            other = int(rng.integers(250, 501))
            h, w = (375, 500) if rng.random() < 0.4 else (other, 500)
            if rng.random() < 0.5:
                h, w = w, h
            out.append(self.image(h // div, w // div))
        return out

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


def plan(ops: list[dict], **output: Any) -> Plan:
    return compile_plan(parse_recipe({"ops": ops, "output": output}))


def count_syncs(probe: Probe, fn: Callable[[], object]) -> int:
    """Host-device synchronisations ``fn`` causes, as torch's sync debug mode reports
    them (one warning each)."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    probe.sync()
    return sum("synchroniz" in str(w.message) for w in caught)


def count_launches(probe: Probe, fn: Callable[[], object]) -> int:
    """CUDA kernel launches ``fn`` makes, from the profiler's runtime API events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        probe.sync()
    return sum(e.count for e in prof.key_averages() if "LaunchKernel" in e.key)


def syncs_and_launches(probe: Probe) -> Finding:
    """O(1) per batch: the larger batch may not cost more syncs, nor half again as
    many launches, as one a quarter of its size."""
    if not probe.cuda:
        raise Skip("counts CUDA syncs and kernel launches")
    p = plan(CLASSIC_CHAIN)
    small, large = probe.batch // 4, probe.batch
    images = probe.mixed(large)
    augment(p, images[:small], seed=0, device=probe.device)  # warm caches and kernels
    figures = {}
    for n in (small, large):
        run = lambda n=n: augment(p, images[:n], seed=0, device=probe.device)  # noqa: E731
        figures[n] = {"syncs": count_syncs(probe, run), "launches": count_launches(probe, run)}
    ok = (
        figures[large]["syncs"] <= figures[small]["syncs"]
        and figures[large]["launches"] <= 1.5 * figures[small]["launches"]
    )
    detail = "; ".join(
        f"batch {n}: {f['syncs']} syncs, {f['launches']} launches" for n, f in figures.items()
    )
    return Finding(ok, detail, {str(n): f for n, f in figures.items()})


def invariance(probe: Probe) -> Finding:
    """A sample's bytes are the same alone, split off, and among other sizes."""
    photo = probe.image(375, 500)
    x = torch.stack(
        [photo[:, 37 * i % 255 :][:, :120, 53 * i % 340 :][:, :, :160] for i in range(16)]
    )
    chains = {
        "contrast mean": [
            CLASSIC_CHAIN[0],
            {"op": "random_resized_crop", "size": [64, 80], "scale": [0.5, 1]},
            *CLASSIC_CHAIN[2:],
        ],
        "blur": [
            {"op": "resize", "size": [64, 80]},
            {"op": "gaussian_blur", "kernel_size": 5, "sigma": [0.1, 2]},
        ],
    }
    figures, ok = {}, True
    for name, ops in chains.items():
        p = plan(ops)
        whole = augment(p, x, seed=4, device=probe.device).images
        split = torch.cat(
            [
                augment(p, x[:5], seed=4, device=probe.device).images,
                augment(p, x[5:], seed=4, offset=5, device=probe.device).images,
            ]
        )
        crowd = augment(
            p,
            [probe.image(90, 70), x[3], probe.image(200, 300)],
            seed=4,
            keys=[7, 3, 8],
            device=probe.device,
        ).images[1]
        differ = {"split": int((whole != split).sum()), "crowd": int((whole[3] != crowd).sum())}
        figures[name] = differ
        ok = ok and differ == {"split": 0, "crowd": 0}
    detail = "; ".join(
        f"{k}: {v['split']} values differ split, {v['crowd']} in a crowd"
        for k, v in figures.items()
    )
    return Finding(ok, detail, figures)


def cpu_parity(probe: Probe) -> Finding:
    """The device's output within one grey level of the CPU's, over the modes the
    engine offers (float output is compared in grey levels of its range)."""
    x = torch.stack([probe.image(120 + 7 * i, 160 + 5 * i)[:, :120, :160] for i in range(6)])
    small = [*CLASSIC_CHAIN[:3], {"op": "random_resized_crop", "size": [64, 80]}]
    cases: dict[str, tuple[Plan, Any]] = {
        f"{k}={v}": (plan(small, **{k: v}), x)
        for k, v in (
            ("interpolation", "nearest"),
            ("interpolation", "bicubic"),
            ("padding_mode", "border"),
            ("padding_mode", "reflection"),
            ("fill", [255, 0, 0]),
        )
    }
    big = probe.image(750, 1000) if probe.quick else probe.image(1500, 2000)
    cases["antialias, several shrink factors"] = (
        plan([{"op": "random_resized_crop", "size": 64}]),
        [big] * 6,
    )
    cases["perspective and erasing"] = (
        plan(
            [
                {"op": "perspective", "p": 1},
                {"op": "resize", "size": [64, 64]},
                {"op": "random_erasing", "p": 1, "value": [255, 0, 0]},
            ]
        ),
        x,
    )
    grey, rgba = (
        probe.image(60, 80)[:1],
        torch.cat([probe.image(100, 90), probe.image(100, 90)[:1]]),
    )
    cases["grey, RGBA and RGB to 4 channels"] = (
        plan([{"op": "rotate", "degrees": 20}], size=[48, 48], channels=4),
        [grey, rgba, probe.image(50, 50)],
    )
    cases["list of sizes, mixed output sizes"] = (
        plan([{"op": "rotate", "degrees": 20}]),
        [probe.image(60, 80), probe.image(90, 70)],
    )
    cases["normalize (float32)"] = (
        plan([*CLASSIC_CHAIN[:2], {"op": "normalize", "mean": [0.5], "std": [0.25]}]),
        x,
    )
    figures, ok = {}, True
    for name, (p, images) in cases.items():
        got = augment(p, images, seed=2, device=probe.device).images
        want = augment(p, images, seed=2, device="cpu").images
        got_list = list(got) if isinstance(got, torch.Tensor) else got
        want_list = list(want) if isinstance(want, torch.Tensor) else want
        scale = 255 * 0.25 if got_list[0].is_floating_point() else 1.0
        diff = max(
            float((g.cpu().double() - w.double()).abs().max()) * scale
            for g, w in zip(got_list, want_list, strict=True)
        )
        figures[name] = round(diff, 4)
        ok = ok and diff <= 1.0
    worst = max(figures, key=figures.get)
    return Finding(ok, f"largest difference {figures[worst]} grey levels ({worst})", figures)


def threads(probe: Probe) -> Finding:
    """Four threads sharing the device give what one thread gives."""
    p = plan(CLASSIC_CHAIN)
    images = probe.mixed(probe.batch // 4, seed=1)
    serial = [augment(p, images, seed=s, device=probe.device).images for s in range(8)]
    probe.sync()
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(4) as pool:
        parallel = list(
            pool.map(lambda s: augment(p, images, seed=s, device=probe.device).images, range(8))
        )
    probe.sync()
    rate = 8 * len(images) / (time.perf_counter() - start)
    ok = all(torch.equal(a, b) for a, b in zip(serial, parallel, strict=True))
    return Finding(
        ok,
        f"4 threads {'equal' if ok else 'differ from'} serial; {rate:.0f} img/s",
        {"img_per_s": round(rate)},
    )


def encoders(probe: Probe) -> Finding:
    """The zip and safetensors encoders copy a device batch to the host in O(1) syncs."""
    from augsvc.pipeline import Rendered, ZipEncoder

    p = plan(CLASSIC_CHAIN)
    result = augment(p, probe.mixed(probe.batch // 4), seed=0, device=probe.device)
    rendered = Rendered(p, 0, 0, result)
    start = time.perf_counter()
    if not probe.cuda:
        ZipEncoder("jpeg").encode(rendered)
        return Finding(True, "encoded on the CPU (no device copies to count)", {})
    syncs = count_syncs(probe, lambda: ZipEncoder("jpeg").encode(rendered))
    elapsed = time.perf_counter() - start
    return Finding(
        syncs <= 2,
        f"encode_zip of {len(result.keys)} images: {syncs} syncs",
        {"syncs": syncs, "seconds": round(elapsed, 3)},
    )


def decode_rate(probe: Probe) -> Finding:
    """Batched nvJPEG against the service's CPU decode, on the bundled 500x375 JPEG."""
    if not probe.cuda:
        raise Skip("compares nvJPEG with the CPU decoder")
    from torchvision.io import decode_jpeg

    raw = sample_photo_bytes()
    n = probe.batch
    data = [torch.frombuffer(bytearray(raw), dtype=torch.uint8) for _ in range(n)]
    decode_jpeg(data[:8], device=probe.device)
    probe.sync()
    start = time.perf_counter()
    for _ in range(64):
        decode_image(raw, max_pixels=10**8)
    cpu = 64 / (time.perf_counter() - start)
    start = time.perf_counter()
    decode_jpeg(data, device=probe.device)
    probe.sync()
    gpu = n / (time.perf_counter() - start)
    return Finding(
        gpu > cpu,
        f"CPU one thread {cpu:.0f} img/s, nvJPEG batch of {n} {gpu:.0f} img/s",
        {"cpu_img_per_s": round(cpu), "nvjpeg_img_per_s": round(gpu)},
    )


def device_validation(probe: Probe) -> Finding:
    """A device index beyond those present is refused when resolved (at start-up)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    spec = f"cuda:{count}"
    try:
        resolve_device(spec)
    except ValueError as exc:
        return Finding(True, f"{spec} refused: {exc}", {"device_count": count})
    return Finding(False, f"{spec} accepted with {count} devices", {"device_count": count})


def out_of_memory(probe: Probe) -> Finding:
    """A request that exhausts device memory is answered 503 with Retry-After, and the
    next one succeeds: the process's share of device memory is cut to a sliver first."""
    if not probe.cuda:
        raise Skip("needs device memory to exhaust")
    from fastapi.testclient import TestClient

    from augsvc.api.app import create_app
    from augsvc.codec import encode_png
    from augsvc.config import Settings

    app = create_app(Settings(device=str(probe.device), max_output_pixels=2**31))
    recipe = {"ops": [{"op": "resize", "size": [4000, 4000]}]}
    files = [("image", ("a.png", encode_png(probe.image(60, 80)), "image/png"))] * 8
    statuses = {}
    with TestClient(app) as client:
        client.put("/v1/recipes/big", json=recipe)
        index = probe.device.index or 0
        torch.cuda.empty_cache()  # cached blocks would serve the request
        torch.cuda.set_per_process_memory_fraction(0.0005, index)
        try:
            answer = client.post(
                "/v1/augment",
                params={"recipe": "big"},
                files=files,
                headers={"Accept": "application/zip"},
            )
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, index)
        statuses["exhausted"] = answer.status_code
        retry = answer.headers.get("Retry-After")
        small = client.put("/v1/recipes/small", json={"ops": [{"op": "resize", "size": [32, 32]}]})
        assert small.status_code in (200, 201), small.text
        after = client.post(
            "/v1/augment",
            params={"recipe": "small"},
            files=files,
            headers={"Accept": "application/zip"},
        )
        statuses["after"] = after.status_code
    ok = statuses == {"exhausted": 503, "after": 200} and retry is not None
    return Finding(
        ok,
        f"exhausted -> {statuses['exhausted']} (Retry-After {retry}), then {statuses['after']}",
        statuses,
    )


def throughput(probe: Probe) -> Finding:
    """The targets: 500x375 JPEGs in, the classic chain, 224 out, one batch: >= 10,000
    img/s in process including decode, and mixed sizes within 0.8x of one size."""
    from augsvc.codec import probe_image
    from augsvc.pipeline.decode import plan_decode

    p = plan(CLASSIC_CHAIN)
    n = probe.batch
    raw = sample_photo_bytes()
    uniform, mixed = [probe.image(375, 500)] * n, probe.mixed(n)

    def rate(run: Callable[[int], object], repeats: int = 5) -> float:
        run(0)
        probe.sync()
        start = time.perf_counter()
        for i in range(repeats):
            run(i + 1)
        probe.sync()
        return n * repeats / (time.perf_counter() - start)

    def with_decode(i: int) -> object:
        headers = [probe_image(raw, max_pixels=10**8) for _ in range(n)]
        planned = plan_decode(p, headers, seed=1, keys=np.arange(i * n, (i + 1) * n))
        return augment(p, planned.decode(), seed=1, offset=i * n, device=probe.device)

    figures = {
        "decoded, one size": rate(
            lambda i: augment(p, uniform, seed=1, offset=i * n, device=probe.device)
        ),
        "decoded, mixed sizes": rate(
            lambda i: augment(p, mixed, seed=1, offset=i * n, device=probe.device)
        ),
        "JPEG in, including decode": rate(with_decode),
    }
    figures = {k: round(v) for k, v in figures.items()}
    ratio = figures["decoded, mixed sizes"] / figures["decoded, one size"]
    met = figures["JPEG in, including decode"] >= 10_000 and ratio >= 0.8
    ok = met or not probe.cuda  # the targets are a GPU's; elsewhere the figures are news
    detail = (
        ", ".join(f"{k} {v} img/s" for k, v in figures.items()) + f"; mixed/one size {ratio:.2f}"
    )
    return Finding(ok, f"batch {n}: {detail}", {**figures, "mixed_over_one_size": round(ratio, 3)})


def memory(probe: Probe) -> Finding:
    """What the runs above left reserved on the device and in pinned host memory."""
    if not probe.cuda:
        raise Skip("reads CUDA allocator statistics")
    stats = torch.cuda.memory_stats(probe.device)
    figures = {
        "reserved_mib": torch.cuda.memory_reserved(probe.device) >> 20,
        "peak_allocated_mib": torch.cuda.max_memory_allocated(probe.device) >> 20,
        "alloc_retries": stats.get("num_alloc_retries", 0),
        "ooms": stats.get("num_ooms", 0),
    }
    return Finding(True, ", ".join(f"{k} {v}" for k, v in figures.items()), figures)


PROBES: dict[str, Callable[[Probe], Finding]] = {
    "device validation": device_validation,
    "syncs and launches per batch": syncs_and_launches,
    "split and crowd invariance": invariance,
    "cpu vs device": cpu_parity,
    "threads equal serial": threads,
    "encoders": encoders,
    "nvjpeg vs cpu decode": decode_rate,
    "out of memory -> 503": out_of_memory,
    "throughput targets": throughput,
    "device memory": memory,
}
