"""timm policy strings: parsed as timm parses them, sampled as timm samples them
(20,000 keys against timm's own draws: op sequences by chi-square, levels by KS),
refused naming the section timm does not know."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import chi2_contingency, ks_2samp

from augsvc.engine import augment, compile_plan, sample_plan
from augsvc.errors import InvalidRecipe
from augsvc.recipes import canonical_json, digest, parse_recipe
from tests.photos import photo_batch

timm_aa = pytest.importorskip("timm.data.auto_augment")

N = 20_000
KEYS = np.arange(N, dtype=np.int64)
HW = (40, 60)
P_MIN = 1e-3


def timm_op(config: str) -> dict:
    return {"op": "timm_auto_augment", "config": config}


def ours(config: str):
    recipe = parse_recipe({"ops": [timm_op(config)]})
    plan = compile_plan(recipe)
    record = sample_plan(plan, 5, KEYS, np.tile(np.array(HW), (N, 1))).record
    return plan.ops[0], record


def timm_draws(transform, ops, n: int) -> list[list[tuple[str, tuple]]]:
    """Each image's applied timm ops, with the arguments timm computed for them."""
    calls: list[tuple[str, tuple]] = []
    for op in ops:
        op.aug_fn = lambda img, *args, _name=op.name, **kw: calls.append((_name, args)) or img
    random.seed(0)
    np.random.seed(0)
    image = Image.new("RGB", HW[::-1])
    out = []
    for _ in range(n):
        calls.clear()
        transform(image)
        out.append(list(calls))
    return out


def assert_same(a: Counter, b: Counter) -> None:
    cats = sorted(set(a) | set(b), key=repr)
    p = chi2_contingency(np.array([[a[c] for c in cats], [b[c] for c in cats]])).pvalue
    assert p > P_MIN, p


@pytest.mark.parametrize(
    "config", ["rand-m9-mstd0.5-inc1", "rand-m9-mstd0.5", "rand-m7-n3-p0.8-mmax12-inc1",
               "rand-m6-mstd101", "rand-m9-n2-mstd1-tweights"],
)  # fmt: skip
def test_rand_strings_parse_and_sample_as_timm(config):
    expanded, record = ours(config)
    ra = timm_aa.rand_augment_transform(config, {"translate_const": 100, "img_mean": (0, 0, 0)})
    assert [e.name for e in expanded.entries] == [op.name for op in ra.ops]
    assert expanded.policy.num_layers == ra.num_layers
    assert expanded.entries[0].op.p == ra.ops[0].prob
    names = [e.name for e in expanded.entries]
    mine, rotate_mine = Counter(), []
    for i in range(N):
        seq = []
        for k, j in enumerate(record["ops.0.choice"][i]):
            if record[f"ops.0.{k}.{j}.applied"][i]:
                seq.append(names[j])
                if names[j] == "Rotate":
                    rotate_mine.append(abs(record["ops.0.value"][i, k]))
        mine[tuple(seq)] += 1
    draws = timm_draws(ra, ra.ops, N)
    theirs = Counter(tuple(name for name, _ in d) for d in draws)
    assert_same(mine, theirs)
    rotate_timm = [abs(args[0]) for d in draws for name, args in d if name == "Rotate"]
    assert ks_2samp(rotate_mine, rotate_timm).pvalue > P_MIN


def test_augmix_strings_parse_and_sample_as_timm():
    config = "augmix-m5-w4-d2"
    expanded, record = ours(config)
    aug = timm_aa.augment_and_mix_transform(config, {"translate_pct": 0.3})
    assert [e.name for e in expanded.entries] == [op.name for op in aug.ops]
    assert (expanded.mixture_width, expanded.chain_depth) == (aug.width, aug.depth)
    names = [e.name for e in expanded.entries]
    choice, values = record["ops.0.choice"], record["ops.0.value"]
    mine = Counter(names[j] for j in choice[choice >= 0].tolist())
    draws = timm_draws(aug, aug.ops, N // 8)
    theirs = Counter(name for d in draws for name, _ in d)
    assert_same(mine, theirs)
    bits_mine = Counter(values[choice == names.index("PosterizeIncreasing")].astype(int).tolist())
    bits_timm = Counter(a[0] for d in draws for n, a in d if n == "PosterizeIncreasing")
    assert_same(bits_mine, bits_timm)
    rot = np.abs(values[choice == names.index("Rotate")])
    rot_timm = [abs(a[0]) for d in draws for n, a in d if n == "Rotate"]
    assert ks_2samp(rot, rot_timm).pvalue > P_MIN
    assert np.allclose(record["ops.0.weights"].sum(axis=1), 1.0)


def test_trivialaugment_is_torchvisions_trivial_augment_wide():
    expanded, record = ours("trivialaugment")
    assert expanded.name() == "trivial_augment_wide"
    assert "ops.0.bin" in record


@pytest.mark.parametrize(
    ("config", "token"),
    [("rand-m9-foo", "'foo'"), ("rand-x9-m9", "'x9'"), ("autoaug-m9", "'autoaug'"),
     ("augmix-n2", "'n2'"), ("rand-t3a", "'t3a'"), ("rand-mstd1e999", "'mstd1e999'"),
     ("", "timm policy string")],
)  # fmt: skip
def test_unknown_sections_are_refused_naming_them(config, token):
    with pytest.raises(InvalidRecipe) as info:
        parse_recipe({"ops": [timm_op(config)]})
    assert "ops[0].config" in str(info.value) and token in str(info.value)


def test_the_digest_pins_timms_table():
    a = parse_recipe({"ops": [timm_op("rand-m9-mstd0.5-inc1")]})
    b = parse_recipe({"ops": [timm_op("rand-m9-mstd0.5")]})
    assert digest(a) != digest(b)
    assert b"SolarizeIncreasing" in canonical_json(a)
    assert digest(parse_recipe(__import__("json").loads(canonical_json(a)))) == digest(a)


@pytest.mark.parametrize("config", ["rand-m9-mstd0.5-inc1", "augmix-m3-w3"])
def test_timm_policies_do_not_depend_on_the_batch(config):
    plan = compile_plan(parse_recipe({"ops": [timm_op(config)]}))
    batch = photo_batch(8)
    whole = augment(plan, batch, seed=2, offset=10)
    part = augment(plan, batch[3:6], seed=2, offset=13)
    assert torch.equal(part.images, whole.images[3:6])
    assert (whole.images.int() - batch.int()).abs().float().mean() > 1
