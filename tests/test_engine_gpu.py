"""The same determinism and correctness checks on CUDA, and CPU vs GPU agreement."""

from __future__ import annotations

import pytest
import torch

from augsvc.engine import augment, compile_plan
from augsvc.recipes import parse_recipe
from tests.chains import BENCH_CHAIN, EVERY_OP
from tests.photos import photo_batch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("recipe", [BENCH_CHAIN, EVERY_OP], ids=["bench_chain", "every_op"])
def test_cuda_is_deterministic_split_invariant_and_matches_cpu(recipe):
    plan = compile_plan(parse_recipe(recipe))
    images = photo_batch(16)
    gpu = augment(plan, images, seed=4, device="cuda").images
    assert gpu.device.type == "cuda"
    assert torch.equal(gpu, augment(plan, images, seed=4, device="cuda").images)
    first = augment(plan, images[:5], seed=4, device="cuda").images
    rest = augment(plan, images[5:], seed=4, offset=5, device="cuda").images
    assert torch.equal(gpu, torch.cat([first, rest]))
    cpu = augment(plan, images, seed=4, device="cpu").images
    diff = (gpu.cpu().int() - cpu.int()).abs()
    assert diff.max() <= 1, f"CPU and GPU differ by up to {diff.max()} grey levels"


def test_cuda_flips_are_exact():
    plan = compile_plan(parse_recipe({"ops": [{"op": "hflip", "p": 1.0}]}))
    images = photo_batch(8)
    assert torch.equal(augment(plan, images, seed=0, device="cuda").images.cpu(), images.flip(-1))
