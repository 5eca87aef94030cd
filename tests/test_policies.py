"""The policies: torchvision's sampling (op, magnitude bin and sign frequencies over
20,000 keys against torchvision's own draws, chi-square), AugMix's weights (KS against
Beta and Dirichlet marginals), determinism across splits, the canonical form pinning
the op table, and each sample's pixels being the ops it drew."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as F
from scipy.stats import beta as beta_dist
from scipy.stats import chi2_contingency, kstest

from augsvc.engine import augment, compile_plan, sample_plan
from augsvc.errors import InvalidRecipe
from augsvc.recipes import canonical_json, digest, parse_recipe
from tests.photos import photo_batch

N = 20_000
KEYS = np.arange(N, dtype=np.int64)
HW = (64, 64)
P_MIN = 1e-3


def record_of(op: dict) -> tuple[dict[str, np.ndarray], list]:
    recipe = parse_recipe({"ops": [op]})
    rec = sample_plan(compile_plan(recipe), 7, KEYS, np.tile(np.array(HW), (N, 1))).record
    return rec, list(recipe.ops[0].table)


def torchvision_draws(transform: T.Transform, n: int = N) -> list[list[tuple[str, float]]]:
    """What torchvision's transform drew for n images: (op, magnitude) per applied op."""
    calls: list[tuple[str, float]] = []

    def record(image, transform_id, magnitude, interpolation, fill):
        calls.append((transform_id, magnitude))
        return image

    transform._apply_image_or_video_transform = record
    torch.manual_seed(0)
    image = torch.zeros((3, *HW), dtype=torch.uint8)
    out = []
    for _ in range(n):
        calls.clear()
        transform(image)
        out.append(list(calls))
    return out


def value_class(magnitudes: torch.Tensor | None, magnitude: float) -> tuple[int, int]:
    """(first bin with this |magnitude|, sign) on torchvision's own table: bins that
    share a value (posterize's) are one class, and a zero magnitude has no sign."""
    if magnitudes is None:
        return (0, 1)
    exact = torch.nonzero(magnitudes.float() == abs(magnitude)).flatten()
    assert len(exact), magnitude
    return (int(exact[0]), -1 if magnitude < 0 else 1)


def our_class(entry, b: int, value: float) -> tuple[int, int]:
    if not entry.magnitudes:
        return (0, 1)
    mags = entry.magnitudes
    first = mags.index(mags[b])
    return (first, -1 if value - entry.base < 0 and mags[b] != 0 else 1)


def assert_same_distribution(ours: Counter, theirs: Counter) -> None:
    cats = sorted(set(ours) | set(theirs), key=repr)
    table = np.array([[ours[c] for c in cats], [theirs[c] for c in cats]])
    assert len(cats) > 1
    p = chi2_contingency(table).pvalue
    assert p > P_MIN, (p, len(cats))


def _space(transform: T.Transform, n_bins: int) -> Callable[[str], torch.Tensor | None]:
    def magnitudes(name: str):
        fn, _ = transform._AUGMENTATION_SPACE[name]
        return fn(n_bins, *HW)

    return magnitudes


def test_rand_augment_samples_as_torchvision():
    rec, table = record_of({"op": "rand_augment", "num_ops": 2, "magnitude": 9})
    ours = Counter()
    for i in range(N):
        ours[tuple(
            (table[c].name, our_class(table[c], int(rec["ops.0.bin"][i, k]),
                                      rec["ops.0.value"][i, k]))
            for k, c in enumerate(rec["ops.0.choice"][i])
        )] += 1  # fmt: skip
    tv = T.RandAugment(num_ops=2, magnitude=9)
    mags = _space(tv, 31)
    theirs = Counter(
        tuple((name, value_class(mags(name), m)) for name, m in draw)
        for draw in torchvision_draws(tv)
    )
    assert_same_distribution(ours, theirs)


def test_trivial_augment_wide_samples_as_torchvision():
    rec, table = record_of({"op": "trivial_augment_wide"})
    ours = Counter(
        (table[c].name, our_class(table[c], int(b), v))
        for c, b, v in zip(
            rec["ops.0.choice"][:, 0], rec["ops.0.bin"][:, 0], rec["ops.0.value"][:, 0], strict=True
        )
    )
    tv = T.TrivialAugmentWide()
    mags = _space(tv, 31)
    theirs = Counter((name, value_class(mags(name), m)) for [(name, m)] in torchvision_draws(tv))
    assert len(theirs) > 300  # op x magnitude class x sign: the bins are compared too
    assert_same_distribution(ours, theirs)


@pytest.mark.parametrize("policy", ["imagenet", "cifar10", "svhn"])
def test_auto_augment_samples_as_torchvision(policy):
    rec, table = record_of({"op": "auto_augment", "policy": policy})
    by_name = {e.name: e for e in table}
    subs = parse_recipe({"ops": [{"op": "auto_augment", "policy": policy}]}).ops[0].sub_policies
    ours = Counter()
    for i in range(N):
        steps = []
        sub = int(rec["ops.0.choice"][i, 0])
        for k in range(2):
            if rec[f"ops.0.{k}.{sub}.applied"][i]:
                name, _, b = subs[sub][k]
                cls = our_class(by_name[name], b or 0, rec["ops.0.value"][i, k])
                steps.append((name, cls))
        ours[tuple(steps)] += 1
    tv = T.AutoAugment(T.AutoAugmentPolicy(policy))
    mags = _space(tv, 10)
    theirs = Counter(
        tuple((name, value_class(mags(name), m)) for name, m in draw)
        for draw in torchvision_draws(tv)
    )
    assert_same_distribution(ours, theirs)


def test_augmix_samples_as_torchvision_and_its_weights_follow_dirichlet():
    rec, table = record_of({"op": "augmix"})
    ours_steps, ours_total = Counter(), Counter()
    choice, bins, values = rec["ops.0.choice"], rec["ops.0.bin"], rec["ops.0.value"]
    for i in range(N):
        live = choice[i] >= 0
        ours_total[int(live.sum())] += 1
        for c, b, v in zip(choice[i][live], bins[i][live], values[i][live], strict=True):
            ours_steps[(table[c].name, our_class(table[c], int(b), v))] += 1
    tv = T.AugMix()
    mags = _space(tv, 10)
    draws = torchvision_draws(tv, N // 4)
    theirs_total = Counter(len(d) for d in draws)
    theirs_steps = Counter((name, value_class(mags(name), m)) for draw in draws for name, m in draw)
    assert_same_distribution(ours_steps, theirs_steps)
    assert_same_distribution(ours_total, theirs_total)
    # Beta(1, 1) for the augmented share; each chain's share of it is Dirichlet(1, 1, 1),
    # whose marginals are Beta(1, 2).
    share = rec["ops.0.beta"]
    assert kstest(share, beta_dist(1.0, 1.0).cdf).pvalue > P_MIN
    chains = rec["ops.0.weights"] / share[:, None]
    assert np.allclose(chains.sum(axis=1), 1.0)
    for c in range(3):
        assert kstest(chains[:, c], beta_dist(1.0, 2.0).cdf).pvalue > P_MIN


@pytest.mark.parametrize("alpha", [0.3, 4.0])
def test_augmix_weights_for_other_alphas(alpha):
    rec, _ = record_of({"op": "augmix", "alpha": alpha, "mixture_width": 4})
    share = rec["ops.0.beta"]
    assert kstest(share, beta_dist(alpha, alpha).cdf).pvalue > P_MIN
    chains = rec["ops.0.weights"] / share[:, None]
    assert kstest(chains[:, 2], beta_dist(alpha, 3 * alpha).cdf).pvalue > P_MIN


POLICIES = [
    {"op": "rand_augment"},
    {"op": "trivial_augment_wide"},
    {"op": "auto_augment", "policy": "svhn"},
    {"op": "augmix", "severity": 5},
]


@pytest.mark.parametrize("op", POLICIES, ids=lambda op: op["op"])
def test_policies_are_the_same_bytes_however_the_batch_is_split(op):
    plan = compile_plan(parse_recipe({"ops": [{"op": "random_resized_crop", "size": 48}, op]}))
    batch = [*photo_batch(7), *photo_batch(3, 90, 70)]
    whole = augment(plan, batch, seed=3, offset=50)
    for lo, hi in ((0, 3), (3, 4), (4, 10)):
        part = augment(plan, batch[lo:hi], seed=3, offset=50 + lo)
        assert torch.equal(part.images, whole.images[lo:hi])
        for name, value in part.params.items():
            assert np.array_equal(value, whole.params[name][lo:hi]), name
    moved = augment(plan, batch, seed=3, offset=51)
    assert not np.array_equal(moved.params["ops.1.choice"], whole.params["ops.1.choice"])


EDGE = [(1, 1), (1, 40), (40, 1), (2, 3), (3, 2), (37, 29)]


@pytest.mark.parametrize(
    "op",
    [*POLICIES, {"op": "timm_auto_augment", "config": "rand-m9-mstd0.5-inc1"},
     {"op": "timm_auto_augment", "config": "augmix-m5-w3-d2"}],
    ids=lambda op: op.get("config", op["op"]),
)  # fmt: skip
def test_policies_on_edge_sizes_and_channel_counts_equal_each_sample_alone(op):
    """One-pixel images and lines, grey and RGBA, in one batch: every sample is what it
    is alone, and alpha passes the tone ops untouched."""
    plan = compile_plan(parse_recipe({"ops": [op], "output": {"channels": "auto"}}))
    images = []
    for i, (h, w) in enumerate(EDGE * 3):
        c = (1, 3, 4)[i % 3]
        images.append(torch.randint(0, 256, (c, h, w), generator=torch.Generator().manual_seed(i),
                                    dtype=torch.uint8))  # fmt: skip
    result = augment(plan, images, seed=1, offset=5)
    assert isinstance(result.images, list)
    for i, image in enumerate(images):
        alone = augment(plan, [image], seed=1, keys=[5 + i]).images[0]
        assert torch.equal(result.images[i], alone)
        assert alone.shape == image.shape


def test_canonical_form_carries_the_table_and_a_changed_table_is_refused():
    recipe = parse_recipe({"ops": [{"op": "rand_augment"}]})
    doc = json.loads(canonical_json(recipe))
    table = doc["ops"][0]["table"]
    assert [e["name"] for e in table][:3] == ["Identity", "ShearX", "ShearY"]
    assert len(table[1]["magnitudes"]) == 31
    assert digest(parse_recipe(doc)) == digest(recipe)
    assert digest(parse_recipe({"ops": [{"op": "rand_augment", "magnitude": 10}]})) != digest(
        recipe
    )
    doc["ops"][0]["table"][5]["magnitudes"][9] = 45.0
    with pytest.raises(InvalidRecipe, match=r"ops\[0\]\.table"):
        parse_recipe(doc)


@pytest.mark.parametrize(
    ("op", "field"),
    [
        ({"op": "auto_augment", "policy": "coco"}, "ops[0].policy"),
        ({"op": "rand_augment", "magnitude": 31}, "ops[0].magnitude"),
        ({"op": "rand_augment", "num_ops": -1}, "ops[0].num_ops"),
        ({"op": "trivial_augment_wide", "num_magnitude_bins": 1}, "ops[0].num_magnitude_bins"),
        ({"op": "augmix", "severity": 11}, "ops[0].severity"),
        ({"op": "augmix", "chain_depth": 0}, "ops[0].chain_depth"),
        ({"op": "augmix", "alpha": 0}, "ops[0].alpha"),
    ],
)
def test_bad_policies_name_the_field(op, field):
    with pytest.raises(InvalidRecipe) as info:
        parse_recipe({"ops": [op]})
    assert field in str(info.value)


INTEGER_OPS = {
    "Posterize": lambda x, v: F.posterize(x, int(v)),
    "Solarize": F.solarize,
    "AutoContrast": lambda x, v: F.autocontrast(x),
    "Equalize": lambda x, v: F.equalize(x),
    "Identity": lambda x, v: x,
}


def test_a_sample_that_drew_integer_ops_is_torchvision_running_them():
    """rand_augment samples whose two ops were both integer ops equal torchvision's
    functional ops run in the drawn order with the drawn values."""
    plan = compile_plan(parse_recipe({"ops": [{"op": "rand_augment", "magnitude": 15}]}))
    batch = photo_batch(64)
    result = augment(plan, batch, seed=9)
    table = plan.recipe.ops[0].table
    checked = 0
    for i in range(len(batch)):
        names = [table[c].name for c in result.params["ops.0.choice"][i]]
        if not all(name in INTEGER_OPS for name in names):
            continue
        expected = batch[i]
        for k, name in enumerate(names):
            expected = INTEGER_OPS[name](expected, result.params["ops.0.value"][i, k])
        assert torch.equal(result.images[i], expected), names
        checked += 1
    assert checked >= 5


GARBAGE = [5, "abc", [1], [{"name": 1}], {"a": 1}, True, 1.5, [None],
           [{"name": "Identity", "op": {"op": "swirl"}}]]  # fmt: skip


@pytest.mark.parametrize(
    "op",
    [{"op": "rand_augment"}, {"op": "auto_augment"}, {"op": "augmix"},
     {"op": "timm_auto_augment", "config": "rand-m9"}],
    ids=lambda op: op["op"],
)  # fmt: skip
@pytest.mark.parametrize("field", ["table", "sub_policies", "policy"])
def test_any_value_sent_for_a_derived_field_is_a_422_not_a_crash(op, field):
    """null means "fill it in"; anything else that is not the derived value is refused."""
    for value in GARBAGE:
        with pytest.raises(InvalidRecipe):
            parse_recipe({"ops": [{**op, field: value}]})


@pytest.mark.parametrize(
    "config", ["rand-n1000", "rand-p1.5", "augmix-w100", "augmix-d0", "rand-m999", "augmix-a0"]
)
def test_timm_settings_out_of_range_name_the_config(config):
    with pytest.raises(InvalidRecipe, match=r"ops\[0\]\.config"):
        parse_recipe({"ops": [{"op": "timm_auto_augment", "config": config}]})


def test_augmix_pixels_are_torchvisions_mix_of_the_drawn_chains():
    """Samples whose chains drew only integer ops: each is (1 - beta) x plus each
    chain's weight times torchvision running that chain, truncated, as torchvision's
    AugMix computes it (one grey level for the float sums' order)."""
    op = {"op": "augmix", "severity": 5, "all_ops": False, "chain_depth": 1, "mixture_width": 2}
    plan = compile_plan(parse_recipe({"ops": [op]}))
    table = plan.recipe.ops[0].table
    batch = photo_batch(48)
    result = augment(plan, batch, seed=6)
    p = result.params
    checked = 0
    for i, x in enumerate(batch):
        steps = p["ops.0.choice"][i]
        names = [[table[c].name for c in chain if c >= 0] for chain in steps]
        if not all(n in INTEGER_OPS for chain in names for n in chain):
            continue
        mix = x.float() * float(1.0 - p["ops.0.beta"][i])
        for c, chain in enumerate(names):
            img = x
            for d, name in enumerate(chain):
                img = INTEGER_OPS[name](img, p["ops.0.value"][i, c, d])
            mix = mix + img.float() * float(p["ops.0.weights"][i, c])
        expected = mix.clamp(0, 255).floor()
        assert (result.images[i].float() - expected).abs().max() <= 1
        checked += 1
    assert checked >= 3
