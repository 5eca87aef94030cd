"""one_of, some_of and random_order: per-sample choices from the counter-based key,
returned with the parameters, fused as the plan says, and refused when ill-defined."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F
from scipy.stats import chisquare

from augsvc.engine import augment, compile_plan, sample_plan
from augsvc.errors import InvalidRecipe
from augsvc.recipes import parse_recipe
from tests.photos import photo_batch

KEYS = np.arange(20_000, dtype=np.int64)
P_MIN = 1e-3


def plan_of(*ops, **output):
    return compile_plan(parse_recipe({"ops": list(ops), "output": output}))


def draws(plan, keys=KEYS, hw=(64, 64)):
    return sample_plan(plan, 11, keys, np.tile(np.array(hw), (len(keys), 1))).record


def test_one_of_follows_its_weights():
    ops = [{"op": "invert"}, {"op": "equalize"}, {"op": "hflip"}, {"op": "posterize", "bits": 2}]
    weights = [1, 2, 3, 4]
    choice = draws(plan_of({"op": "one_of", "ops": ops, "weights": weights}))["ops.0.choice"]
    counts = np.bincount(choice[:, 0], minlength=4)
    expected = np.array(weights) / sum(weights) * len(KEYS)
    assert chisquare(counts, expected).pvalue > P_MIN


def test_one_of_coin_and_member_coins():
    """The combinator's p skips the whole choice (-1); a member's own p then applies."""
    one_of = {"op": "one_of", "p": 0.5, "ops": [{"op": "invert", "p": 0.25}, {"op": "equalize"}]}
    record = draws(plan_of(one_of))
    choice = record["ops.0.choice"][:, 0]
    assert abs((choice == -1).mean() - 0.5) < 0.02
    invert_on = record["ops.0.0.0.applied"]
    assert not invert_on[choice != 0].any()
    assert abs(invert_on[choice == 0].mean() - 0.25) < 0.03
    assert np.array_equal(record["ops.0.0.1.applied"], choice == 1)


def test_some_of_takes_n_different_ops_every_subset_and_order_alike():
    ops = [{"op": "invert"}, {"op": "equalize"}, {"op": "autocontrast"}, {"op": "vflip"}]
    choice = draws(plan_of({"op": "some_of", "n": 2, "ops": ops}))["ops.0.choice"]
    assert (choice[:, 0] != choice[:, 1]).all()
    counts = Counter(map(tuple, choice.tolist()))
    assert set(counts) == set(itertools.permutations(range(4), 2))
    assert chisquare(list(counts.values())).pvalue > P_MIN


def test_some_of_in_listed_order():
    ops = [{"op": "invert"}, {"op": "equalize"}, {"op": "autocontrast"}]
    doc = {"op": "some_of", "n": 2, "ops": ops, "random_order": False}
    choice = draws(plan_of(doc))["ops.0.choice"]
    assert (choice[:, 0] < choice[:, 1]).all()
    counts = Counter(map(tuple, choice.tolist()))
    assert set(counts) == {(0, 1), (0, 2), (1, 2)}
    assert chisquare(list(counts.values())).pvalue > P_MIN


def test_random_order_draws_every_order_alike():
    ops = [{"op": "invert"}, {"op": "posterize", "bits": 3}, {"op": "solarize", "threshold": 90}]
    choice = draws(plan_of({"op": "random_order", "ops": ops}))["ops.0.choice"]
    counts = Counter(map(tuple, choice.tolist()))
    assert set(counts) == set(itertools.permutations(range(3)))
    assert chisquare(list(counts.values())).pvalue > P_MIN


TONE = {
    0: lambda x: F.posterize(x, 2),
    1: lambda x: F.solarize(x, 128),
    2: F.invert,
    3: F.equalize,
}


def test_each_sample_is_the_chain_it_drew():
    """some_of over integer ops: every sample equals torchvision running the ops it
    drew, in the order it drew them."""
    ops = [
        {"op": "posterize", "bits": 2},
        {"op": "solarize", "threshold": 128},
        {"op": "invert"},
        {"op": "equalize"},
    ]
    batch = photo_batch(16)
    result = augment(plan_of({"op": "some_of", "n": 2, "ops": ops}), batch, seed=4)
    choice = result.params["ops.0.choice"]
    assert len({tuple(c) for c in choice.tolist()}) > 4
    for i, x in enumerate(batch):
        expected = x
        for j in choice[i]:
            expected = TONE[int(j)](expected)
        assert torch.equal(result.images[i], expected), choice[i]


def test_geometric_choices_join_the_warp_before_them():
    """hflip then one_of(rotate, shear) then invert: one warp stage, then the pixel op;
    a sample's pixels are those of the plain recipe with the values it drew."""
    one_of = {"op": "one_of", "ops": [{"op": "rotate", "degrees": 30}, {"op": "shear", "x": 20}]}
    plan = plan_of({"op": "hflip"}, one_of, {"op": "invert"})
    assert [s.kind for s in plan.stages] == ["warp", "pixel"]
    batch = photo_batch(8)
    result = augment(plan, batch, seed=2)
    p = result.params
    choice = p["ops.1.choice"][:, 0]
    assert np.array_equal(p["ops.1.0.0.applied"], choice == 0)
    assert np.all(p["ops.1.0.0.angle"][choice != 0] == 0)
    assert set(choice.tolist()) == {0, 1}
    for i in range(len(batch)):
        flip = {"op": "hflip", "p": float(p["ops.0.applied"][i])}
        if choice[i] == 0:
            a = float(p["ops.1.0.0.angle"][i])
            drawn = {"op": "rotate", "degrees": [a, a]}
        else:
            s = float(p["ops.1.0.1.x"][i])
            drawn = {"op": "shear", "x": [s, s]}
        alone = augment(plan_of(flip, drawn, {"op": "invert"}), batch[i : i + 1], seed=0)
        assert torch.equal(alone.images[0], result.images[i])
        assert np.allclose(alone.params["matrix"][0], p["matrix"][i])


def test_choices_do_not_depend_on_the_batch():
    ops = [{"op": "rotate", "degrees": 40}, {"op": "posterize", "bits": [1, 4]}, {"op": "invert"}]
    plan = plan_of({"op": "some_of", "n": 2, "ops": ops, "p": 0.9})
    batch = photo_batch(9)
    whole = augment(plan, batch, seed=8, offset=100)
    for lo, hi in ((0, 4), (4, 5), (5, 9)):
        part = augment(plan, batch[lo:hi], seed=8, offset=100 + lo)
        assert torch.equal(part.images, whole.images[lo:hi])
        for name, value in part.params.items():
            assert np.array_equal(value, whole.params[name][lo:hi]), name
    other = augment(plan, batch, seed=8, offset=101)
    assert not np.array_equal(other.params["ops.0.choice"], whole.params["ops.0.choice"])


@pytest.mark.parametrize(
    ("op", "field", "words"),
    [
        ({"op": "one_of", "ops": []}, "ops[0].ops", "at least 1"),
        ({"op": "some_of", "n": 3, "ops": [{"op": "invert"}]}, "ops[0].n", "only 1"),
        (
            {"op": "some_of", "n": -1, "ops": [{"op": "invert"}]},
            "ops[0].n",
            "greater than or equal to 0",
        ),
        ({"op": "one_of", "ops": [{"op": "invert"}], "weights": [1, 2]}, "ops[0].weights", "1"),
        ({"op": "one_of", "ops": [{"op": "invert"}], "weights": [0]}, "ops[0].weights", "0"),
        ({"op": "one_of", "ops": [{"op": "swirl"}]}, "ops[0].ops", "swirl"),
        ({"op": "one_of", "ops": [{"op": "rotate", "degrees": "x"}]}, "ops[0].ops", "[0].degrees"),
        ({"op": "random_order", "ops": [{"op": "crop", "size": 4}]}, "ops[0].ops", "crop"),
        (
            {"op": "one_of", "ops": [{"op": "one_of", "ops": [{"op": "invert"}]}]},
            "ops[0].ops",
            "do not nest",
        ),
    ],
)
def test_bad_combinators_name_the_field(op, field, words):
    with pytest.raises(InvalidRecipe) as info:
        parse_recipe({"ops": [op]})
    assert info.value.status == 422
    assert field in str(info.value) and words in str(info.value), str(info.value)


def test_a_one_sample_batch_s_params_serialise():
    """A single sample's (1, 1) choice must be a plain array: a [:, None] view has a
    zero stride that the safetensors writer cannot flatten (a 500 the property tests
    found through multipart uploads)."""
    from augsvc.codec.batches import images_to_safetensors

    ops = [{"op": "one_of", "ops": [{"op": "invert"}]}, {"op": "some_of", "n": 1, "ops": [
        {"op": "equalize"}]}, {"op": "rand_augment", "num_ops": 1}, {"op": "augmix"}]  # fmt: skip
    record = draws(plan_of(*ops), keys=np.array([3]))
    images_to_safetensors({k: torch.from_numpy(v) for k, v in record.items()})
