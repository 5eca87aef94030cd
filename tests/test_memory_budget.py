"""The memory budget under concurrent use, and the header probe the costs it admits are
worked out from."""

from __future__ import annotations

import threading
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augsvc import codec
from augsvc.errors import ImageTooLarge, Overloaded, PayloadTooLarge, UndecodableImage
from augsvc.pipeline import JobCost, MemoryBudget
from tests import imagegen

# The decoder's fast JPEG path warns that torchvision.io is deprecated (see test_codec).
pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision:DeprecationWarning"
)


def cost(nbytes: int, what: str = "a job") -> JobCost:
    return JobCost(what, "batch_size", encoded=nbytes)


class Recorder:
    """The budget's ``on_change`` calls: every value it held."""

    def __init__(self) -> None:
        self.values: list[int] = []
        self.rejected = 0

    def change(self, held: int) -> None:
        self.values.append(held)

    def reject(self) -> None:
        self.rejected += 1


def test_a_cost_over_either_limit_is_a_413_naming_the_setting_and_what_to_lower():
    budget = MemoryBudget(per_job=100 * 2**20, in_flight=50 * 2**20)
    started = time.monotonic()
    job = JobCost("the request's 2 images", "the output size", outputs=101 * 2**20)
    with pytest.raises(PayloadTooLarge, match="AUGSVC_MAX_JOB_BYTES") as per_job:
        budget.check(job)
    assert per_job.value.detail.startswith("the request's 2 images would hold 101.0 MiB")
    assert "(outputs 101.0 MiB)" in per_job.value.detail
    assert per_job.value.detail.endswith("lower the output size")
    with (
        pytest.raises(PayloadTooLarge, match="AUGSVC_MAX_INFLIGHT_BYTES"),
        budget.hold(cost(60 * 2**20), wait_s=30),
    ):
        pass
    assert time.monotonic() - started < 5  # refused at once, not after the 30 s wait
    assert budget.held == 0


def test_a_busy_budget_is_a_503_with_retry_after_and_is_released_on_errors():
    recorder = Recorder()
    budget = MemoryBudget(100, 100, on_change=recorder.change, on_reject=recorder.reject)
    with budget.hold(cost(70, "first")):
        with (
            pytest.raises(Overloaded, match="70 B of the 100 B") as busy,
            budget.hold(cost(40, "second")),
        ):
            pass
        assert busy.value.headers["Retry-After"] == "1"
        assert busy.value.status == 503
        with budget.hold(cost(30, "third")):  # exactly full is allowed
            assert budget.held == 100
    assert budget.held == 0
    with pytest.raises(RuntimeError), budget.hold(cost(100, "failing")):
        raise RuntimeError("the work failed")
    assert budget.held == 0
    assert recorder.values == [70, 100, 70, 0, 100, 0]
    assert recorder.rejected == 1


def test_a_holder_that_finishes_lets_a_waiter_in():
    budget = MemoryBudget(100, 100)
    entered = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with budget.hold(cost(80, "holder")):
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    assert entered.wait(5)
    threading.Timer(0.2, release.set).start()
    started = time.monotonic()
    with budget.hold(cost(50, "waiter"), wait_s=5):
        waited = time.monotonic() - started
        assert budget.held == 50
    thread.join()
    assert 0.1 < waited < 4


@settings(max_examples=30, deadline=None)
@given(
    st.integers(10, 200),
    st.lists(st.integers(0, 120), min_size=1, max_size=24),
    st.sampled_from([0.0, 0.05]),
)
def test_concurrent_holders_never_exceed_the_budget(capacity, costs, wait_s):
    """Threads hold random costs at once: the total held never passes the budget, every
    refusal is for a reason that was true, and everything is given back."""
    recorder = Recorder()
    budget = MemoryBudget(150, capacity, on_change=recorder.change, on_reject=recorder.reject)
    outcomes: list[str] = []
    barrier = threading.Barrier(len(costs))

    def work(c: int) -> None:
        barrier.wait()
        try:
            with budget.hold(JobCost(f"cost {c}", "n", encoded=c), wait_s=wait_s):
                time.sleep(0.002)
            outcomes.append("held")
        except PayloadTooLarge:
            assert c > min(150, capacity)
            outcomes.append("too large")
        except Overloaded:
            outcomes.append("busy")

    threads = [threading.Thread(target=work, args=(c,)) for c in costs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == len(costs)
    assert max(recorder.values, default=0) <= capacity
    assert budget.held == 0 and (not recorder.values or recorder.values[-1] == 0)
    assert outcomes.count("busy") == recorder.rejected
    fits = [c for c in costs if c <= min(150, capacity)]
    assert outcomes.count("too large") == len(costs) - len(fits)
    if sum(fits) <= capacity:  # room for all at once: nobody may be turned away
        assert outcomes.count("held") == len(fits)


# --- the header probe ---------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "mode"), imagegen.FORMAT_MODES)
def test_the_probe_reads_the_size_decoding_will_have(fmt, mode):
    data = imagegen.image_bytes(fmt, 37, 23, mode)
    header = codec.probe_image(data, max_pixels=10_000, name="x")
    assert (header.width, header.height, header.pixels) == (37, 23, 37 * 23)
    decoded = header.decode()
    assert tuple(decoded.shape[1:]) == (23, 37)
    assert codec.decode_image(data, max_pixels=10_000).equal(decoded)


def test_a_rotated_image_costs_the_same_pixels():
    data = imagegen.jpeg_bytes(40, 30, orientation=6)  # shown as 30 wide, 40 high
    header = codec.probe_image(data, max_pixels=1200, name="x")
    assert header.pixels == 1200
    assert tuple(header.decode().shape[1:]) == (40, 30)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.sampled_from(["png", "jpeg"]))
def test_the_probe_agrees_with_the_decoder_on_any_size(width, height, kind):
    data = (imagegen.png_bytes if kind == "png" else imagegen.jpeg_bytes)(width, height)
    header = codec.probe_image(data, max_pixels=width * height, name="x")
    assert (header.width, header.height) == (width, height)
    assert tuple(header.decode().shape[1:]) == (height, width)
    with pytest.raises(ImageTooLarge, match=f"{width}x{height}"):
        codec.probe_image(data, max_pixels=width * height - 1, name="x")


def test_probing_a_huge_compressible_png_decodes_nothing(black_png_36mp):
    tracemalloc.start()
    started = time.perf_counter()
    header = codec.probe_image(black_png_36mp, max_pixels=40_000_000, name="black.png")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert header.pixels == 6000 * 6000
    assert peak < 1_000_000, peak  # 108 MB once decoded
    assert elapsed < 0.5


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"", "0 bytes"), (b"hello" * 10, "not a recognised"), (imagegen.png_bytes(8, 8)[:30], "PNG")],
)
def test_the_probe_refuses_what_the_decoder_refuses(data, words):
    with pytest.raises(UndecodableImage, match=words):
        codec.probe_image(data, max_pixels=100, name="bad.png")
