"""Mixup, smooth_one_hot and SoftTargetCrossEntropy: the maths, the statistics of the
counter-based draws, reproducibility, and timm's Mixup given the same lambdas and boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
hypothesis = pytest.importorskip("hypothesis")
from augsvc_client.regularization import (  # noqa: E402
    Mixup,
    SoftTargetCrossEntropy,
    smooth_one_hot,
)
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

N_KEYS = 20_000
#: Kolmogorov-Smirnov critical value at the 0.1% level for 20,000 draws.
KS_CRITICAL = 1.949 / math.sqrt(N_KEYS)
CUDA = torch.cuda.is_available()

mixes = st.fixed_dictionaries(
    {
        "mixup_alpha": st.sampled_from([0.0, 0.2, 0.8, 1.0, 4.0]),
        "cutmix_alpha": st.sampled_from([0.0, 0.3, 1.0]),
        "cutmix_minmax": st.sampled_from([None, None, (0.2, 0.8), (0.0, 1.0)]),
        "prob": st.sampled_from([0.5, 1.0]),
        "switch_prob": st.sampled_from([0.0, 0.5, 1.0]),
        "mode": st.sampled_from(["batch", "pair", "elem"]),
        "correct_lam": st.booleans(),
        "label_smoothing": st.sampled_from([0.0, 0.1, 0.3]),
    }
).filter(lambda m: m["mixup_alpha"] > 0 or m["cutmix_alpha"] > 0 or m["cutmix_minmax"])


@st.composite
def batches(draw):
    n = draw(st.integers(1, 6)) * 2
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.uint8]))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    if dtype == torch.uint8:
        x = torch.randint(0, 256, (n, 3, h, w), generator=gen, dtype=torch.uint8)
    else:
        x = (torch.rand((n, 3, h, w), generator=gen) * 255).to(dtype)
    keys = draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n, unique=True))
    return x, np.array(keys), draw(st.integers(0, 2**64 - 1))


@settings(max_examples=60, deadline=None)
@given(mix=mixes, batch=batches(), num_classes=st.integers(2, 12))
def test_every_row_is_the_reported_blend_or_paste(mix, batch, num_classes):
    x, keys, seed = batch
    mixup = Mixup(**mix, num_classes=num_classes, seed=seed)
    labels = torch.as_tensor(keys % num_classes)
    before = x.clone()
    out, soft = mixup(x, labels, keys)
    p = mixup.params(keys, x.shape[-2:])
    assert torch.equal(x, before)  # the input is left alone
    if x.dtype == torch.uint8:  # mixed as float32 in [0, 1], what a model takes
        assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
        x = x.float() / 255
    assert out.dtype == x.dtype
    n, _, h, w = x.shape
    assert (p.partner == np.arange(n)[::-1]).all()
    for i in range(n):
        a, b = x[i], x[p.partner[i]]
        lam = p.lam[i]
        if p.cutmix[i]:
            y0, y1, x0, x1 = p.box[i]
            inside = torch.zeros((h, w), dtype=torch.bool)
            inside[y0:y1, x0:x1] = True
            assert torch.equal(out[i], torch.where(inside, b, a))
            if mix["correct_lam"] or mix["cutmix_minmax"]:
                assert lam == 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
        else:
            w_a = torch.tensor(lam, dtype=torch.float64).to(x.dtype)
            w_b = torch.tensor(1.0 - lam, dtype=torch.float64).to(x.dtype)
            assert torch.equal(out[i], a * w_a + b * w_b)  # bit for bit
        if not p.applied[i]:
            assert lam == 1.0 and torch.equal(out[i], a)
    # soft targets: lam on the own label, 1 - lam on the partner's, smoothing everywhere
    s = mix["label_smoothing"]
    off = s / num_classes
    assert soft.dtype == torch.float32 and soft.shape == (n, num_classes)
    torch.testing.assert_close(soft.sum(1), torch.ones(n), rtol=0, atol=2e-6)
    for i in range(n):
        y, y_partner = int(labels[i]), int(labels[p.partner[i]])
        want = np.full(num_classes, off)
        want[y] += p.lam[i] * (1 - s)
        want[y_partner] += (1 - p.lam[i]) * (1 - s)
        np.testing.assert_allclose(soft[i].numpy(), want, rtol=0, atol=2e-6)
    if mix["mode"] == "pair":
        assert (p.lam == p.lam[p.partner]).all() and (p.box == p.box[p.partner]).all()
    if mix["mode"] == "batch":
        assert len(set(p.lam.tolist())) == 1


def _ks(samples: np.ndarray, cdf) -> float:
    x = np.sort(samples)
    f = cdf(x)
    i = np.arange(1, len(x) + 1)
    return float(max((i / len(x) - f).max(), (f - (i - 1) / len(x)).max()))


BETA_CDFS = {
    0.5: lambda x: 2 / np.pi * np.arcsin(np.sqrt(x)),
    1.0: lambda x: x,
    2.0: lambda x: 3 * x**2 - 2 * x**3,
    3.0: lambda x: 10 * x**3 - 15 * x**4 + 6 * x**5,
}


def _lams(seed: int, **mix) -> tuple[np.ndarray, object]:
    mixup = Mixup(mode="elem", num_classes=10, seed=seed, **mix)
    p = mixup.params(np.arange(N_KEYS), (224, 224))
    return p.lam, p


@pytest.mark.parametrize("alpha", sorted(BETA_CDFS))
def test_lambda_follows_beta_alpha_alpha(alpha):
    lam, _ = _lams(5, mixup_alpha=alpha)
    assert _ks(lam, BETA_CDFS[alpha]) < KS_CRITICAL
    # and the test has power: the neighbouring alpha is rejected
    other = 1.0 if alpha == 0.5 else alpha / 2
    wrong = BETA_CDFS.get(other) or BETA_CDFS[0.5]
    assert _ks(lam, wrong) > KS_CRITICAL


@pytest.mark.parametrize("alpha", [0.1, 0.2, 0.8, 1.5])
def test_lambda_follows_beta_for_timm_alphas(alpha):
    stats = pytest.importorskip("scipy.stats")
    lam, _ = _lams(11, mixup_alpha=alpha)
    assert _ks(lam, stats.beta(alpha, alpha).cdf) < KS_CRITICAL
    cut, _ = _lams(12, mixup_alpha=0.0, cutmix_alpha=alpha, correct_lam=False)
    assert _ks(cut, stats.beta(alpha, alpha).cdf) < KS_CRITICAL


def _binomial_ok(hits: int, n: int, p: float) -> bool:
    return abs(hits - n * p) <= 4.5 * math.sqrt(n * p * (1 - p)) + 1e-9


@pytest.mark.parametrize("switch_prob", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_switch_rate_is_switch_prob(switch_prob):
    _, p = _lams(7, mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=switch_prob)
    assert p.applied.all()
    assert _binomial_ok(int(p.cutmix.sum()), N_KEYS, switch_prob)


@pytest.mark.parametrize("prob", [0.0, 0.1, 0.5, 1.0])
def test_prob_is_respected(prob):
    lam, p = _lams(9, mixup_alpha=1.0, cutmix_alpha=1.0, prob=prob)
    assert _binomial_ok(int(p.applied.sum()), N_KEYS, prob)
    assert (lam[~p.applied] == 1.0).all() and not p.cutmix[~p.applied].any()
    assert (lam[p.applied] < 1.0).sum() >= 0.99 * p.applied.sum()


def test_minmax_box_sides_are_uniform_in_the_range():
    _, p = _lams(3, mixup_alpha=0.0, cutmix_minmax=(0.25, 0.75))
    heights = p.box[:, 1] - p.box[:, 0]
    widths = p.box[:, 3] - p.box[:, 2]
    assert heights.min() == 56 and heights.max() == 167 and widths.max() == 167
    assert (p.box[:, 1] <= 224).all() and (p.box[:, 0] >= 0).all()
    assert abs(heights.mean() - (56 + 167) / 2) < 1.0


@settings(max_examples=30, deadline=None)
@given(batch=batches(), mix=mixes)
def test_same_seed_and_keys_same_mix_other_seed_differs(batch, mix):
    x, keys, seed = batch
    labels = torch.as_tensor(keys % 5)
    a = Mixup(**mix, num_classes=5, seed=seed)(x, labels, keys)
    b = Mixup(**mix, num_classes=5, seed=seed)(x.clone(), labels, list(keys))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_a_different_seed_mixes_differently():
    keys = np.arange(64)
    one = Mixup(0.8, 1.0, mode="elem", num_classes=10, seed=1).params(keys, (32, 32))
    two = Mixup(0.8, 1.0, mode="elem", num_classes=10, seed=2).params(keys, (32, 32))
    assert (one.lam != two.lam).mean() > 0.9


def test_elem_draws_follow_each_key_not_the_batch():
    """In elem mode a sample's lambda and box depend on its key only: not on its
    batch-mates, the batch size or its row."""
    mixup = Mixup(0.4, 1.0, mode="elem", num_classes=10, seed=8)
    keys = np.arange(100, 132)
    whole = mixup.params(keys, (16, 16))
    part = mixup.params(keys[5:12][::-1], (16, 16))
    assert (part.lam == whole.lam[5:12][::-1]).all()
    assert (part.box == whole.box[5:12][::-1]).all()
    assert (part.cutmix == whole.cutmix[5:12][::-1]).all()


def test_mixup_enabled_false_and_odd_batches():
    mixup = Mixup(1.0, 1.0, mode="elem", num_classes=3)
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    out, _ = mixup(x, torch.tensor([0, 1, 2, 0, 1]), [1, 2, 3, 4, 5])
    torch.testing.assert_close(out[2], x[2])  # the middle row is its own partner
    mixup.mixup_enabled = False
    out, soft = mixup(x, torch.tensor([0, 1, 2, 0, 1]), [1, 2, 3, 4, 5])
    assert torch.equal(out, x)
    torch.testing.assert_close(soft, smooth_one_hot(torch.tensor([0, 1, 2, 0, 1]), 3, 0.1))
    with pytest.raises(ValueError, match="even"):
        Mixup(mode="pair", num_classes=3)(x, torch.zeros(5, dtype=torch.long), range(5))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"mixup_alpha": -0.1}, "mixup_alpha"),
        ({"cutmix_alpha": float("nan")}, "cutmix_alpha"),
        ({"mixup_alpha": 0.0}, "one of"),
        ({"prob": 1.5}, "prob"),
        ({"switch_prob": -1}, "switch_prob"),
        ({"cutmix_minmax": (0.8, 0.2)}, "cutmix_minmax"),
        ({"mode": "row"}, "mode"),
        ({"num_classes": 0}, "num_classes"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_settings_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Mixup(**{"num_classes": 10, **kwargs})


def test_bad_keys_are_refused():
    mixup = Mixup(num_classes=3)
    x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 1])
    for keys, words in (([1], "keys for a batch"), ([0.5, 1.5], "integers"), ([-1, 2], "non-neg")):
        with pytest.raises(ValueError, match=words):
            mixup(x, y, keys)


def test_smooth_one_hot_and_soft_target_cross_entropy():
    labels = torch.tensor([2, 0, 1])
    y = smooth_one_hot(labels, 4, 0.2)
    assert torch.equal(y[0], torch.tensor([0.05, 0.05, 0.85, 0.05]))
    torch.testing.assert_close(y.sum(1), torch.ones(3))
    logits = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    loss = SoftTargetCrossEntropy()(logits, smooth_one_hot(labels, 4))
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, labels))
    smoothed = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.2)
    torch.testing.assert_close(SoftTargetCrossEntropy()(logits, y), smoothed)
    with pytest.raises(ValueError, match="labels must be in"):
        smooth_one_hot(torch.tensor([4]), 4)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("kind", ["mixup", "cutmix", "minmax", "both"])
def test_timm_mixes_the_same_given_the_same_lambdas_and_boxes(mode, kind, monkeypatch):
    """timm's Mixup, fed our lambdas (its _params_per_*) and our boxes (its rand_bbox*),
    produces our images and soft targets."""
    timm_mixup = pytest.importorskip("timm.data.mixup")
    settings = {
        "mixup": {"mixup_alpha": 0.8},
        "cutmix": {"mixup_alpha": 0.0, "cutmix_alpha": 1.0},
        "minmax": {"mixup_alpha": 0.0, "cutmix_minmax": (0.3, 0.9)},
        "both": {"mixup_alpha": 0.8, "cutmix_alpha": 1.0},
    }[kind]
    common = {**settings, "prob": 0.8, "mode": mode, "label_smoothing": 0.1, "num_classes": 7}
    ours = Mixup(**common, seed=4)
    x = torch.rand(12, 3, 17, 23, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(12) % 7
    keys = np.arange(300, 312)
    p = ours.params(keys, (17, 23))
    drawn = np.arange(len(x)) if mode == "elem" else np.arange(len(x) // 2)
    drawn = drawn[:1] if mode == "batch" else drawn
    # timm's rand_bbox receives the uncorrected lambda; hand it our box per call, in order
    boxes = iter([tuple(p.box[i]) for i in drawn if p.cutmix[i]])
    monkeypatch.setattr(timm_mixup, "rand_bbox", lambda *a, **k: next(boxes))
    monkeypatch.setattr(timm_mixup, "rand_bbox_minmax", lambda *a, **k: next(boxes))

    class Fed(timm_mixup.Mixup):
        def _params_per_elem(self, batch_size):
            lam = np.where(p.applied[drawn], p.lam[drawn], 1.0).astype(np.float32)
            lam[p.cutmix[drawn]] = 0.5  # anything != 1: timm recomputes it from our box
            return lam, p.cutmix[drawn].copy()

        def _params_per_batch(self):
            if not p.applied[0]:
                return 1.0, False
            return (0.5 if p.cutmix[0] else float(p.lam[0])), bool(p.cutmix[0])

    reference = Fed(**{**common, "correct_lam": True})
    want_x, want_y = reference(x.clone(), labels)
    assert next(boxes, None) is None  # timm asked for exactly our boxes
    got_x, got_y = ours(x, labels, keys)
    torch.testing.assert_close(got_x, want_x, rtol=0, atol=1e-6)
    torch.testing.assert_close(got_y, want_y, rtol=0, atol=1e-6)
    if kind != "mixup":
        cut = torch.as_tensor(p.cutmix)
        assert torch.equal(got_x[cut], want_x[cut])  # pasted pixels are exactly timm's


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.uint8])
def test_cuda_mixes_exactly_as_cpu(dtype):
    x = (torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(dtype)
    labels = torch.arange(64) % 10
    mixup = Mixup(0.8, 1.0, mode="elem", num_classes=10, seed=6)
    cpu = mixup(x, labels, np.arange(64))
    gpu = mixup(x.cuda(), labels.cuda(), torch.arange(64).cuda())
    assert torch.equal(cpu[0], gpu[0].cpu())
    assert torch.equal(cpu[1], gpu[1].cpu())


def test_the_documented_training_step_runs_a_conv_model_on_uint8_batches():
    """The README's step on the uint8 batches the service answers: ``model(mixed)`` runs
    (a uint8 batch would meet float weights), the mixed batch is what the same batch
    scaled to [0, 1] mixes to, and steps on the loss lower it."""
    from augsvc_client.regularization import WeightPenalty

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(24, 3),
    )  # fmt: skip
    x = torch.randint(0, 256, (8, 3, 16, 16), generator=torch.Generator().manual_seed(3),
                      dtype=torch.uint8)  # fmt: skip
    y = torch.arange(8) % 3
    mixup = Mixup(0.8, 1.0, mode="elem", label_smoothing=0.1, num_classes=3, seed=7)
    mixed, targets = mixup(x, y, keys=range(8))
    assert mixed.dtype == torch.float32 and mixed.shape == x.shape
    assert torch.equal(mixed, mixup(x.float() / 255, y, keys=range(8))[0])
    penalty = WeightPenalty(model, l2=1e-4)
    loss_fn = SoftTargetCrossEntropy()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(30):
        loss = loss_fn(model(mixed), targets) + penalty()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert model[0].weight.grad.abs().sum() > 0  # the gradient reached the convolution
    assert losses[-1] < losses[0] - 0.01, losses
