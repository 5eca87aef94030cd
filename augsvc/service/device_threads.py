"""The threads that drive the device: each engine and stream thread is bound to the
service's device and, on CUDA, has a stream of its own; the engine threads are warmed up
at start-up; and a device out of memory is answered like any other overload.

On CUDA every thread of a process shares the legacy default stream unless it sets
another, so two requests' kernels and copies would queue behind one another; a stream
per thread lets one request's uploads and kernels overlap another's. The current device
is per thread too, so ``cuda:1`` is set in each thread rather than once in the process.

The first request on a fresh process pays for CUDA's context, cuBLAS handles, kernel
loading and the caching allocator's first blocks (seconds, not milliseconds); a warm-up
batch through every engine thread pays that before the service reports ready.
"""

from __future__ import annotations

import contextlib
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from augsvc.errors import Overloaded

#: Engine threads when ``AUGSVC_ENGINE_THREADS`` is 0: on the CPU one request already
#: spreads over every core; on CUDA a request's decode, device work and encode can each
#: overlap another request's, one per thread and stream.
AUTO_ENGINE_THREADS = {"cpu": 1, "cuda": 3}

#: A recipe that touches every kernel family the engine launches: both warp paths, the
#: colour matmul and its mean, a blur, and float output.
WARM_UP_RECIPE = {
    "ops": [
        {"op": "rotate", "degrees": 30},
        {"op": "random_resized_crop", "size": 32},
        {"op": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
        {"op": "gaussian_blur", "kernel_size": 3, "sigma": [0.1, 1.0], "p": 1.0},
        {"op": "perspective", "p": 1.0},
        {"op": "normalize"},
    ]
}


def engine_threads(setting: int, device: torch.device) -> int:
    """The setting, or the device's default when it is 0 (automatic)."""
    return setting or AUTO_ENGINE_THREADS.get(device.type, 1)


def bind_thread(device: torch.device) -> None:
    """Run in each new engine or stream thread: the device, and a stream of its own."""
    if device.type != "cuda":
        return
    torch.cuda.set_device(device)
    torch.cuda.set_stream(torch.cuda.Stream(device))


def warm_up_batch(device: torch.device) -> None:
    """One small batch through the engine on ``device``, on the calling thread's stream."""
    from augsvc.engine import augment, compile_plan
    from augsvc.recipes import parse_recipe

    plan = compile_plan(parse_recipe(WARM_UP_RECIPE))
    images = torch.arange(2 * 3 * 48 * 64, dtype=torch.int64).remainder(251).to(torch.uint8)
    out = augment(plan, images.view(2, 3, 48, 64), seed=0, device=device).images
    assert isinstance(out, torch.Tensor)
    out.cpu()  # waits for the device, and warms the copy back


def on_every_thread(pool: ThreadPoolExecutor, workers: int, fn: Callable[[], object]) -> set[str]:
    """Run ``fn`` once on each of the pool's ``workers`` threads (starting them), and
    return their names. Each call waits at a barrier until all have started, so no
    thread can take two of them."""
    barrier = threading.Barrier(workers)

    def job() -> str:
        try:
            fn()
        except BaseException:
            barrier.abort()  # the others stop waiting; this error is the one raised
            raise
        with contextlib.suppress(threading.BrokenBarrierError):  # another's error is raised
            barrier.wait(timeout=300)
        return threading.current_thread().name

    futures = [pool.submit(job) for _ in range(workers)]
    return {f.result() for f in futures}


def out_of_memory(exc: BaseException) -> Overloaded | None:
    """The overload a device out-of-memory error means (None for any other error).

    The batch was admitted by the pixel budget, so another request holds the memory
    it needed: a retry after the others finish can succeed. The failed batch's tensors,
    still held by the traceback's frames, are released and the allocator's cache handed
    back to the device first."""
    if not isinstance(exc, torch.OutOfMemoryError):
        return None
    traceback.clear_frames(exc.__traceback__)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return Overloaded(
        "the device ran out of memory for this batch while other work held it; "
        "retry after the Retry-After delay, or send fewer or smaller images",
        retry_after=2,
    )
