"""``augsvc bench service`` and ``augsvc bench stream``: end-to-end throughput over
loopback, next to the in-process engine on the same photos, cores and run.

A real ``augsvc serve`` subprocess is started on 127.0.0.1 (same settings a user
gets), so the figures include HTTP, (de)serialisation, decoding and the bounded
engine queue. Medians over round-robin repeats, as the engine bench.
"""

from __future__ import annotations

import http.client
import io
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from PIL import Image

from augsvc.bench.engine import (
    CHAINS,
    Chain,
    Inputs,
    albumentations_transform,
    augsvc_contender,
    torchvision_transform,
)
from augsvc.bench.photos import bench_photos
from augsvc.codec import images_to_safetensors, read_frame

_LISTENING = re.compile(r"augsvc listening on (http://\S+)")


@contextmanager
def local_server(env: dict[str, str], timeout_s: float = 90.0, port: int = 0) -> Iterator[str]:
    """A real ``augsvc serve`` on a loopback port (0: a free one); yields its base URL.
    A fixed port is for a machine whose firewall or profiler watches one."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUGSVC_")}
    environment.update(env, PYTHONUNBUFFERED="1")
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "augsvc.cli", "serve", "--port", str(port),
             "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout_s
            url = None
            while url is None:
                log.seek(0)
                match = _LISTENING.search(log.read().decode(errors="replace"))
                if match:
                    url = match.group(1)
                elif proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"augsvc serve did not start:\n{log.read().decode()}")
                else:
                    time.sleep(0.05)
            while httpx.get(f"{url}/healthz").status_code != 200:
                time.sleep(0.05)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


@dataclass
class Row:
    name: str
    seconds: list[float] = field(default_factory=list)
    images: int = 0

    @property
    def rates(self) -> list[float]:
        return [self.images / s for s in self.seconds]

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


@dataclass
class EndToEndResult:
    target: str
    environment: dict[str, Any]
    rows: list[Row]
    reference: str = "in-process engine"  # what the first row is, for the ratio column

    def markdown(self) -> str:
        env = self.environment
        lines = [
            f"augsvc bench {self.target}: device {env['device']}; {env['cpu_cores']} CPU cores; "
            f"batch {env['batch']}; {env['photos']} photos {env['input']} -> 224x224 uint8; "
            f"{env['repeats']} timed rounds after warm-up, round-robin\nchain: {env['chain']}",
            "",
            f"| path | images/s (median) | min-max | ratio to {self.reference} |",
            "|---|---:|---:|---:|",
        ]
        reference = self.rows[0].median
        for row in self.rows:
            rates = row.rates
            lines.append(
                f"| {row.name} | {row.median:.1f} | {min(rates):.1f}-{max(rates):.1f} | "
                f"{row.median / reference:.2f} |"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "environment": self.environment,
            "results": [
                {"path": r.name, "images_per_s": r.median, "batch_seconds": r.seconds}
                for r in self.rows
            ],
        }


def _jpeg(photo: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(photo).save(out, "JPEG", quality=90)
    return out.getvalue()


def _post(client: httpx.Client, offset: int, **kw: Any) -> int:
    params = {"recipe": "bench", "seed": 0, "offset": offset, "return_params": "false"}
    r = client.post("/v1/augment", params=params, **kw)
    r.raise_for_status()
    return len(r.content)


class LeanPoster:
    """POSTs a prepared body to /v1/augment and reads the answer into one reused buffer.

    Client and server share this machine's cores, so whatever the client spends is
    taken from the server. httpx spends several times more CPU per batch (chunked
    reads, joins, fresh buffers; the README has the figures), which a trainer on
    another machine pays on its own cores. This client costs what the kernel's socket
    copies cost, so the rows it drives measure the service. One connection per
    instance: not thread-safe, one per thread.
    """

    def __init__(self, url: str, body: bytes, content_type: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
        self._body = body
        self._headers = {"Content-Type": content_type, "Accept": "application/x-safetensors"}
        self._buffer = bytearray()

    def __call__(self, offset: int) -> int:
        query = urllib.parse.urlencode(
            {"recipe": "bench", "seed": 0, "offset": offset, "return_params": "false"}
        )
        self._conn.request("POST", f"/v1/augment?{query}", body=self._body, headers=self._headers)
        response = self._conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"/v1/augment answered {response.status}: {response.read()!r}")
        size = int(response.getheader("Content-Length") or 0)
        if len(self._buffer) < size:
            self._buffer = bytearray(size)
        view = memoryview(self._buffer)[:size]
        done = 0
        while done < size:
            read = response.readinto(view[done:])
            if not read:
                raise RuntimeError("/v1/augment closed the connection mid-answer")
            done += read
        return size

    def close(self) -> None:
        self._conn.close()


def _multipart(files: list[tuple[str, tuple[str, bytes, str]]]) -> tuple[bytes, str]:
    """The multipart body (and its content type) httpx would send for ``files``."""
    request = httpx.Request("POST", "http://bench/", files=files)
    return request.read(), request.headers["Content-Type"]


def _timed(fn: Callable[[int], Any], index: int) -> float:
    start = time.perf_counter()
    fn(index)
    return time.perf_counter() - start


def _measure(rows: list[tuple[Row, Callable[[int], Any]]], repeats: int, warmup: int) -> None:
    for i in range(warmup):
        for _, fn in rows:
            fn(i)
    for r in range(repeats):
        shift = r % len(rows)
        for row, fn in rows[shift:] + rows[:shift]:
            row.seconds.append(_timed(fn, warmup + r))


#: Limits a bench server runs under: large photos in batches pass the defaults.
LARGE_LIMITS = {
    "AUGSVC_MAX_REQUEST_BYTES": str(2**31),
    "AUGSVC_MAX_JOB_BYTES": str(2**36),
    "AUGSVC_MAX_INFLIGHT_BYTES": str(2**37),
    "AUGSVC_MAX_IMAGE_PIXELS": str(2**27),
}


def jpeg_peers(jpegs: list[bytes], chain: Chain, batch: int) -> list[tuple[Row, Callable]]:
    """In-process rows on the same JPEG bytes: augsvc's decode plan and engine, and the
    peers as their users run them (torchvision: decode_jpeg then v2 per sample;
    Albumentations: cv2.imdecode then Compose per sample)."""
    from augsvc.codec import probe_image
    from augsvc.engine import augment, compile_plan
    from augsvc.pipeline.decode import plan_decode
    from augsvc.recipes import parse_recipe

    plan = compile_plan(parse_recipe(chain.recipe))

    def augsvc_jpegs(i: int) -> None:
        headers = [probe_image(d, max_pixels=2**30) for d in jpegs]
        keys = list(range(i * batch, i * batch + len(headers)))
        images = plan_decode(plan, headers, seed=0, keys=keys).decode()
        augment(plan, images, seed=0, keys=keys)

    rows: list[tuple[Row, Callable]] = [
        (Row("augsvc in process: JPEG bytes -> decode plan + engine", images=batch),
         augsvc_jpegs),
    ]  # fmt: skip
    try:
        from torchvision.io import decode_jpeg

        transform = torchvision_transform(chain)
        encoded = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in jpegs]

        def torchvision_jpegs(i: int) -> None:
            torch.stack([transform(decode_jpeg(e)) for e in encoded])

        rows.append(
            (Row("torchvision in process: decode_jpeg + v2 per sample", images=batch),
             torchvision_jpegs)
        )  # fmt: skip
    except ImportError:
        pass
    try:
        import cv2

        album = albumentations_transform(chain, 0)
        buffers = [np.frombuffer(d, dtype=np.uint8) for d in jpegs]

        def album_jpegs(i: int) -> None:
            for b in buffers:
                rgb = cv2.cvtColor(cv2.imdecode(b, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                album(image=rgb)

        rows.append((Row("Albumentations in process: cv2.imdecode + Compose per sample",
                         images=batch), album_jpegs))  # fmt: skip
    except ImportError:
        pass
    return rows


def _environment(device: str, batch: int, repeats: int, photos: int, hw: tuple[int, int]):
    return {
        "device": device,
        "cpu_cores": os.cpu_count(),
        "batch": batch,
        "repeats": repeats,
        "photos": photos,
        "input": f"{hw[1]}x{hw[0]}",
        "torch": torch.__version__,
    }


def run_service_bench(
    *, batch: int = 64, repeats: int = 7, warmup: int = 2, device: str = "auto",
    size: tuple[int, int] = (375, 500), chain: str = "default", port: int = 0,
) -> EndToEndResult:  # fmt: skip
    from augsvc.allocator import retain_freed_memory
    from augsvc.engine import resolve_device

    retain_freed_memory()  # as the server does: the client's responses are ~10 MB each
    device = str(resolve_device(device))  # one device for both, and a bad one fails here
    photos = bench_photos(batch, size)
    inputs = Inputs.from_photos(photos, CHAINS[chain])

    engine = augsvc_contender(inputs, torch.device(device), 0)
    upload = images_to_safetensors({"images": inputs.batch})
    jpegs = [_jpeg(p) for p in photos]
    files = [("images", (f"{i:03d}.jpg", data, "image/jpeg")) for i, data in enumerate(jpegs)]
    tensor_headers = {
        "Content-Type": "application/x-safetensors",
        "Accept": "application/x-safetensors",
    }
    multipart, multipart_type = _multipart(files)
    with (
        local_server({"AUGSVC_DEVICE": device, **LARGE_LIMITS}, port=port) as url,
        httpx.Client(base_url=url, timeout=300) as client,
        ThreadPoolExecutor(2) as pool,
    ):
        client.put("/v1/recipes/bench", json=CHAINS[chain].recipe).raise_for_status()
        posters = [
            LeanPoster(url, body, kind)
            for body, kind in [(upload, "application/x-safetensors"), (multipart, multipart_type)]
            for _ in range(2)  # a connection per request in flight
        ]
        tensors, tensors_2nd, jpeg, jpeg_2nd = posters

        def httpx_tensors(i: int) -> int:
            return _post(client, i * batch, content=upload, headers=tensor_headers)

        def pipelined(first: LeanPoster, second: LeanPoster) -> Callable[[int], None]:
            """Two requests in flight (as the SDK's augment_iter), counted as one round."""
            return lambda i: list(pool.map(lambda p, k: p(k * batch), (first, second),
                                           (2 * i, 2 * i + 1)))  # fmt: skip

        rows = [
            (Row("in-process engine (uint8 tensor in and out)", images=batch), engine.run),
            (Row("service: safetensors in -> safetensors out", images=batch),
             lambda i: tensors(i * batch)),
            (Row("service: JPEG files in -> safetensors out", images=batch),
             lambda i: jpeg(i * batch)),
            (Row("service: safetensors in/out, 2 in flight", images=2 * batch),
             pipelined(tensors, tensors_2nd)),
            (Row("service: JPEG in -> safetensors, 2 in flight", images=2 * batch),
             pipelined(jpeg, jpeg_2nd)),
            (Row("service: safetensors in/out, httpx client", images=batch), httpx_tensors),
            *jpeg_peers(jpegs, CHAINS[chain], batch),
        ]  # fmt: skip
        try:
            _measure(rows, repeats, warmup)
        finally:
            for poster in posters:
                poster.close()
    env = _environment(str(engine.device), batch, repeats, len(photos), size)
    env["chain"] = CHAINS[chain].text
    return EndToEndResult("service", env, [row for row, _ in rows])


#: The mixed-stream row's settings (DeiT's): every sample's partner is rendered too.
STREAM_MIX = {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "label_smoothing": 0.1}


def _stream_epoch(
    client: httpx.Client, batch: int, epoch: int, dataset: str = "bench", mix: dict | None = None
) -> int:
    params = {"recipe": "bench", "seed": 0, "epoch": epoch, "batch_size": batch, **(mix or {})}
    count = 0
    buf = bytearray()
    with client.stream("GET", f"/v1/datasets/{dataset}/stream", params=params) as r:
        r.raise_for_status()
        for chunk in r.iter_raw(1 << 20):  # big reads: per-chunk Python work adds up
            buf += chunk
            while (got := read_frame(buf)) is not None:
                del buf[: got[1]]
                count += 1
    return count


def run_stream_bench(
    *, batch: int = 64, repeats: int = 5, warmup: int = 1, device: str = "auto",
    size: tuple[int, int] = (375, 500), files: int = 256, chain: str = "default", port: int = 0,
) -> EndToEndResult:  # fmt: skip
    """One epoch of a folder of JPEGs streamed, next to /v1/augment of the same JPEGs and,
    when rclone and the s3 extra are installed, the same folder served as a bucket by
    `rclone serve s3` on loopback."""
    from augsvc.allocator import retain_freed_memory
    from augsvc.bench.object_store import loopback_s3, object_store_missing
    from augsvc.engine import resolve_device

    device = str(resolve_device(device))  # the report names the real device; a bad one fails here

    photos = bench_photos(files, size)
    jpegs = [_jpeg(p) for p in photos]
    missing = object_store_missing()
    if missing:
        print(f"augsvc bench stream: no object-store row: {missing}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as root, ExitStack() as stack:
        folder = Path(root) / "bench-bucket" / "bench"  # a bucket of rclone's, and a folder
        for i, data in enumerate(jpegs):
            (folder / f"class{i % 4}").mkdir(parents=True, exist_ok=True)
            (folder / f"class{i % 4}" / f"{i:04d}.jpg").write_bytes(data)
        env = {"AUGSVC_DEVICE": device, "AUGSVC_DATA_ROOTS": root, **LARGE_LIMITS}
        if not missing:
            env |= stack.enter_context(loopback_s3(Path(root)))
            env["AUGSVC_DATA_URLS"] = "s3://bench-bucket/bench"
        retain_freed_memory()
        with (
            local_server(env, port=port) as url,
            httpx.Client(base_url=url, timeout=300) as client,
        ):
            client.put("/v1/recipes/bench", json=CHAINS[chain].recipe).raise_for_status()
            dataset = {"kind": "folder", "path": str(folder)}
            client.put("/v1/datasets/bench", json=dataset).raise_for_status()
            if not missing:
                remote = {"kind": "folder", "url": "s3://bench-bucket/bench"}
                client.put("/v1/datasets/bench-s3", json=remote).raise_for_status()

            def augment_epoch(i: int) -> None:
                for start in range(0, files, batch):
                    chunk = jpegs[start : start + batch]
                    up = [("images", (f"{j}.jpg", d, "image/jpeg")) for j, d in enumerate(chunk)]
                    _post(client, start, files=up, headers={"Accept": "application/x-safetensors"})

            rows = [
                (Row("POST /v1/augment, JPEG in -> safetensors, sequential", images=files),
                 augment_epoch),
                (Row("GET /v1/datasets/{name}/stream (server-side JPEG folder)", images=files),
                 lambda i: _stream_epoch(client, batch, i)),
                (Row("GET /v1/datasets/{name}/stream, mixup_alpha=0.8 cutmix_alpha=1.0 (a "
                     "second render per sample: its partner)", images=files),
                 lambda i: _stream_epoch(client, batch, i, mix=STREAM_MIX)),
                *[(Row(row.name, images=files), _per_epoch(fn, jpegs, batch))
                  for row, fn in jpeg_peers(jpegs[:batch], CHAINS[chain], batch)],
            ]  # fmt: skip
            if not missing:
                rows.append(
                    (Row("GET /v1/datasets/{name}/stream (the same JPEGs in an S3 bucket: "
                         "rclone serve s3 on loopback)", images=files),
                     lambda i: _stream_epoch(client, batch, i, "bench-s3")),
                )  # fmt: skip
            _measure(rows, repeats, warmup)
    environment = _environment(device, batch, repeats, files, size)
    environment["chain"] = CHAINS[chain].text
    return EndToEndResult("stream", environment, [row for row, _ in rows], "/v1/augment")


def _per_epoch(fn: Callable[[int], Any], jpegs: list[bytes], batch: int) -> Callable[[int], None]:
    """An in-process row over a whole epoch: the batch function once per batch's worth."""

    def epoch(i: int) -> None:
        for start in range(0, len(jpegs), batch):
            fn(i * len(jpegs) + start)

    return epoch
