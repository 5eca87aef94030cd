"""Every sample is a pure function of (recipe, seed, sample key, image)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augsvc.engine import augment, compile_plan
from augsvc.recipes import parse_recipe
from tests.chains import BENCH_CHAIN, EVERY_OP
from tests.photos import photo, photo_batch


@pytest.fixture(params=["bench_chain", "every_op"])
def plan(request):
    return compile_plan(parse_recipe(BENCH_CHAIN if request.param == "bench_chain" else EVERY_OP))


def test_same_inputs_give_identical_bytes(plan):
    images = photo_batch(12)
    a = augment(plan, images, seed=7).images
    b = augment(plan, images.clone(), seed=7).images
    assert a.dtype == torch.uint8
    assert torch.equal(a, b)


@pytest.mark.parametrize("k", [1, 5, 11])
def test_one_call_equals_two_calls_split_at_k(plan, k):
    images = photo_batch(12)
    whole = augment(plan, images, seed=3, offset=100).images
    first = augment(plan, images[:k], seed=3, offset=100).images
    rest = augment(plan, images[k:], seed=3, offset=100 + k).images
    assert torch.equal(whole, torch.cat([first, rest]))


def test_batch_composition_and_order_do_not_matter(plan):
    """A sample keeps its bytes when its neighbours change, whatever their sizes."""
    target = photo(120, 160)
    alone = augment(plan, target[None], seed=5, keys=[42]).images[0]
    crowd = [photo(90, 70), target, photo(200, 300), photo(120, 160).flip(-1)]
    mixed = augment(plan, crowd, seed=5, keys=[7, 42, 8, 9])
    assert isinstance(mixed.images, torch.Tensor)
    assert torch.equal(mixed.images[1], alone)


def test_different_seed_or_key_gives_different_output(plan):
    images = photo_batch(8)
    base = augment(plan, images, seed=1).images
    other_seed = augment(plan, images, seed=2).images
    other_keys = augment(plan, images, seed=1, offset=8).images
    for other in (other_seed, other_keys):
        differing = [not torch.equal(base[i], other[i]) for i in range(8)]
        assert all(differing)


def test_recipe_change_changes_every_draw():
    images = photo_batch(6)
    a = augment(compile_plan(parse_recipe(BENCH_CHAIN)), images, seed=1)
    tweaked = {"ops": [dict(BENCH_CHAIN["ops"][0], degrees=31), *BENCH_CHAIN["ops"][1:]]}
    b = augment(compile_plan(parse_recipe(tweaked)), images, seed=1)
    assert not np.allclose(a.params["ops.1.top"], b.params["ops.1.top"])


def test_params_are_returned_per_sample(plan):
    images = photo_batch(5)
    result = augment(plan, images, seed=9)
    assert result.params["matrix"].shape == (5, 3, 3)
    assert result.keys.tolist() == [0, 1, 2, 3, 4]
    for name, values in result.params.items():
        assert len(values) == 5, name


def test_float32_and_normalised_outputs():
    images = photo_batch(4)
    f32 = parse_recipe({"ops": [{"op": "hflip", "p": 1.0}], "output": {"dtype": "float32"}})
    out = augment(compile_plan(f32), images, seed=0).images
    assert out.dtype == torch.float32
    assert torch.allclose(out, images.flip(-1).float() / 255, atol=1e-5)  # grid float32
    norm = parse_recipe({"ops": [{"op": "normalize", "mean": [0.5], "std": [0.25]}]})
    out = augment(compile_plan(norm), images, seed=0).images
    assert torch.allclose(out, (images.float() / 255 - 0.5) / 0.25, atol=1e-5)


def test_mixed_channels_and_sizes_batch_together():
    """``channels: 4`` converts every sample; ``auto`` keeps each sample's own count."""
    grey = photo(60, 80)[:1]
    rgba = torch.cat([photo(100, 90), torch.full((1, 100, 90), 200, dtype=torch.uint8)])
    rgb = photo(50, 50)
    ops = [{"op": "hflip", "p": 1.0}]
    auto = parse_recipe({"ops": ops, "output": {"size": [32, 32], "channels": "auto"}})
    kept = augment(compile_plan(auto), [grey, rgba, rgb], seed=0)
    assert isinstance(kept.images, list)
    assert [img.shape for img in kept.images] == [(1, 32, 32), (4, 32, 32), (3, 32, 32)]
    recipe = parse_recipe({"ops": ops, "output": {"size": [32, 32], "channels": 4}})
    result = augment(compile_plan(recipe), [grey, rgba, rgb], seed=0)
    assert result.images.shape == (3, 4, 32, 32)
    assert torch.equal(result.images[0, 0], kept.images[0][0])  # grey replicated
    assert torch.equal(result.images[0, 0], result.images[0, 1])  # grey replicated
    assert (result.images[[0, 2], 3] == 255).all()  # opaque alpha added
    assert (result.images[1, 3] == 200).all()  # alpha kept


def test_different_output_sizes_come_back_as_a_list():
    recipe = parse_recipe({"ops": [{"op": "vflip", "p": 1.0}]})
    a, b = photo(40, 30), photo(20, 50)
    result = augment(compile_plan(recipe), [a, b], seed=0)
    assert isinstance(result.images, list)
    assert torch.equal(result.images[0], a.flip(-2))
    assert torch.equal(result.images[1], b.flip(-2))


def test_engine_works_in_a_forked_child_after_use_in_the_parent():
    """DataLoader workers fork after the parent used the engine's CPU thread pool.

    Like DataLoader's worker loop, the child runs torch single-threaded (libgomp cannot
    run parallel regions in a child forked after the parent used them: any torch op
    would hang); the engine must then work serially, not wait on the parent's pool."""
    import multiprocessing

    plan = compile_plan(parse_recipe(BENCH_CHAIN))
    images = photo_batch(12)
    expected = augment(plan, images, seed=3).images
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_augment_in_child, (images, 3)).get(timeout=60)
    assert torch.equal(got, expected)


def _augment_in_child(images, seed):
    torch.set_num_threads(1)
    return augment(compile_plan(parse_recipe(BENCH_CHAIN)), images, seed=seed).images


def test_cpu_workers_of_one_thread_survive_another_threads_size():
    """torch's thread count is per thread, so callers ask for different pool sizes at
    once. A pool one thread is using must keep working when another asks for another
    size (a stream render thread once lost its pool mid-frame this way)."""
    from concurrent.futures import ThreadPoolExecutor

    from augsvc.engine import cpu_workers

    def single_threaded_pool():
        torch.set_num_threads(1)
        return cpu_workers()

    with ThreadPoolExecutor(1) as caller:
        small = caller.submit(single_threaded_pool).result()
    big = cpu_workers()
    assert small is not big or torch.get_num_threads() == 1
    assert list(small.map(lambda v: v * 2, range(5))) == [0, 2, 4, 6, 8]
    assert list(big.map(lambda v: v + 1, range(3))) == [1, 2, 3]


def test_augments_on_threads_of_mixed_torch_thread_counts_agree_with_serial():
    """Many threads of mixed torch thread counts augmenting at once give the same
    bytes as one call: the shared CPU pools never fail or mix up chunks."""
    from concurrent.futures import ThreadPoolExecutor

    plan = compile_plan(parse_recipe(BENCH_CHAIN))
    images = photo_batch(16)
    expected = augment(plan, images, seed=9).images

    def run(threads: int) -> torch.Tensor:
        torch.set_num_threads(threads)
        return augment(plan, images, seed=9).images

    with ThreadPoolExecutor(4) as callers:
        results = list(callers.map(run, [1, 2, 1, 2, 1, 2, 1, 2]))
    assert all(torch.equal(r, expected) for r in results)
