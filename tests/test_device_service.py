"""How the service meets its device: an out-of-memory anywhere in a job is a 503 with
Retry-After (raised for real through a real server, by a custom op loaded the way users
load theirs), a ``cuda:N`` beyond the devices present is refused by name, the engine
thread count follows the device, and the warm-up reaches every engine thread."""

from __future__ import annotations

import os
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from augsvc.engine import resolve_device
from augsvc.engine.run import check_device_index
from augsvc.service.device_threads import (
    bind_thread,
    engine_threads,
    on_every_thread,
    out_of_memory,
    warm_up_batch,
)
from tests.imagegen import png_bytes

EXHAUST = textwrap.dedent(
    '''
    """exhaust: a filter whose kernel runs out of device memory, as a too-large batch does."""

    from typing import ClassVar, Literal

    import torch

    from augsvc.ops import PixelOp, register


    @register
    class Exhaust(PixelOp):
        """Raise what torch raises when the device cannot allocate."""

        kind: ClassVar = "filter"
        op: Literal["exhaust"] = "exhaust"

        def sample(self, draws, canvas):
            return {"applied": self.applied(draws)}

        def apply(self, x, params):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    '''
)


@pytest.fixture(scope="module")
def exhaust_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugins")
    (root / "device_ops").mkdir()
    (root / "device_ops" / "__init__.py").write_text("")
    (root / "device_ops" / "exhaust.py").write_text(EXHAUST)
    return root


def test_device_out_of_memory_is_a_503_with_retry_after_and_the_service_carries_on(
    exhaust_path, start_augsvc
):
    paths = [str(exhaust_path), os.environ.get("PYTHONPATH", "")]
    server = start_augsvc(
        AUGSVC_OP_MODULES="device_ops.exhaust",
        PYTHONPATH=os.pathsep.join(p for p in paths if p),
    )
    files = [("image", ("a.png", png_bytes(40, 30), "image/png"))]
    with server.client() as client:
        put = client.put("/v1/recipes/oom", json={"ops": [{"op": "exhaust"}]})
        assert put.status_code == 201, put.text
        for accept in ("application/zip", "application/x-safetensors"):
            answer = client.post(
                "/v1/augment", params={"recipe": "oom"}, files=files, headers={"Accept": accept}
            )
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["Retry-After"] == "2"
            problem = answer.json()
            assert problem["code"] == "overloaded" and "out of memory" in problem["detail"]
        preview = client.get("/v1/recipes/oom/preview", params={"n": 2})
        assert preview.status_code == 503, preview.text
        assert preview.headers["Retry-After"] == "2"
        client.put("/v1/recipes/fine", json={"ops": [{"op": "hflip", "p": 1.0}]})
        fine = client.post(
            "/v1/augment",
            params={"recipe": "fine"},
            files=files,
            headers={"Accept": "application/zip"},
        )
        assert fine.status_code == 200, fine.text
        assert client.get("/readyz").json()["engine_threads"] == 1  # automatic on the CPU


def test_out_of_memory_is_recognised_by_type_alone():
    assert out_of_memory(torch.OutOfMemoryError("CUDA out of memory")).status == 503
    assert out_of_memory(RuntimeError("CUDA out of memory")) is None
    assert out_of_memory(MemoryError()) is None


@pytest.mark.parametrize(("spec", "count"), [("cuda:1", 1), ("cuda:4", 4), ("cuda:0", 0)])
def test_a_device_index_beyond_those_present_is_refused_by_name(spec, count):
    with pytest.raises(ValueError, match=rf"'{spec}' requested but this machine has {count} CUDA"):
        check_device_index(spec, torch.device(spec), count)


def test_a_device_index_among_those_present_and_plain_cuda_pass():
    check_device_index("cuda:3", torch.device("cuda:3"), 4)
    check_device_index("cuda", torch.device("cuda"), 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message without CUDA")
def test_without_cuda_every_cuda_spec_names_the_missing_cuda():
    with pytest.raises(ValueError, match="'cuda:7' requested but CUDA is not available"):
        resolve_device("cuda:7")


def test_engine_threads_follow_the_device_unless_set():
    assert engine_threads(0, torch.device("cpu")) == 1
    assert engine_threads(0, torch.device("cuda:1")) == 3
    assert engine_threads(5, torch.device("cuda")) == 5


def test_the_warm_up_reaches_every_engine_thread_once():
    calls: list[str] = []
    lock = threading.Lock()

    def warm() -> None:
        with lock:
            calls.append(threading.current_thread().name)

    with ThreadPoolExecutor(3, thread_name_prefix="t", initializer=bind_thread,
                            initargs=(torch.device("cpu"),)) as pool:  # fmt: skip
        names = on_every_thread(pool, 3, warm)
    assert len(names) == 3 and sorted(calls) == sorted(names)


def test_the_warm_up_batch_runs_the_engine():
    warm_up_batch(torch.device("cpu"))


def test_a_failing_warm_up_fails_at_once_instead_of_waiting_at_the_barrier():
    def fail() -> None:
        raise RuntimeError("no device after all")

    with ThreadPoolExecutor(3) as pool, pytest.raises(RuntimeError, match="no device"):
        on_every_thread(pool, 3, fail)
