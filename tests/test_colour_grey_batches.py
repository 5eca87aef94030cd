"""A grey sample's colour map does not depend on its batch: the luma projection of a
batch of maps rounded differently with the batch size (one float32 ulp, visible in
float32 output), which colour ops on grey images, policies' among them, ran into."""

from __future__ import annotations

import pytest
import torch

from augsvc.engine import augment, compile_plan
from augsvc.recipes import parse_recipe
from tests.mixes import random_image


@pytest.mark.parametrize("n", [2, 3, 4, 5])
@pytest.mark.parametrize(
    "colour",
    [
        {"op": "color_jitter", "brightness": 0.3, "contrast": 0.5, "saturation": 0.4, "hue": 0.1},
        {"op": "trivial_augment_wide"},
    ],
    ids=["color_jitter", "trivial_augment_wide"],
)
def test_grey_samples_are_the_same_alone_and_in_a_batch(colour, n):
    recipe = {"ops": [{"op": "rotate", "degrees": 20}, colour],
              "output": {"dtype": "float32", "channels": 1}}  # fmt: skip
    plan = compile_plan(parse_recipe(recipe))
    for seed in range(12):
        batch = torch.stack([random_image(3, 17, 11, seed=seed * 10 + i) for i in range(n)])
        together = augment(plan, batch, seed=seed, offset=5).images
        for i in range(n):
            alone = augment(plan, [batch[i]], seed=seed, keys=[5 + i]).images[0]
            assert torch.equal(together[i], alone), (seed, i)
