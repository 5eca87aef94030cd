"""Tests for augsvc_client.regularization (torch only, CPU)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from augsvc_client.regularization import (  # noqa: E402
    DEFAULT_DECAY_TYPES,
    DropoutSchedule,
    DropPath,
    WeightPenalty,
    decay_param_groups,
    drop_path,
    mc_dropout,
    mc_predict,
    select_parameters,
    set_dropout,
)
from torch import nn  # noqa: E402

DEFAULT_CNN_NAMES = ["features.0.weight", "head.weight"]


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential()
    model.add_module(
        "features",
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
    )
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flatten", nn.Flatten())
    model.add_module("head", nn.Linear(4, 2))
    with torch.no_grad():  # make norm parameters non-trivial so a wrong selection shows
        model.features[1].weight.uniform_(0.5, 1.5)
        model.features[1].bias.uniform_(-0.5, 0.5)
    return model


def reference_penalty(model: nn.Module, names: list[str], l1: float, l2: float) -> float:
    """The formula, written out: l1 * sum|w| + l2 / 2 * sum w**2 over the named params (fp64)."""
    total = 0.0
    for name, param in model.named_parameters():
        if name in names:
            w = param.detach().double()
            total += l1 * w.abs().sum().item() + 0.5 * l2 * (w * w).sum().item()
    return total


def reference_grads(model: nn.Module, names: list[str], l1: float, l2: float) -> dict:
    """d/dw of the formula: l1 * sign(w) + l2 * w for the named params."""
    return {
        name: l1 * torch.sign(p.detach()) + l2 * p.detach()
        for name, p in model.named_parameters()
        if name in names
    }


def assert_penalty_matches(model, penalty, names, l1, l2):
    assert sorted(penalty.names) == sorted(names)
    value = penalty()
    assert value.dtype == torch.float32 and value.ndim == 0
    assert value.item() == pytest.approx(reference_penalty(model, names, l1, l2), rel=1e-5)
    model.zero_grad(set_to_none=True)
    value.backward()
    expected = reference_grads(model, names, l1, l2)
    for name, param in model.named_parameters():
        if name in expected:
            torch.testing.assert_close(param.grad, expected[name], rtol=1e-5, atol=1e-7)
        else:  # biases, BN parameters: untouched by the penalty alone
            assert param.grad is None or torch.count_nonzero(param.grad) == 0, name


# ---------------------------------------------------------------- WeightPenalty


@pytest.mark.parametrize(
    ("l1", "l2"), [(1e-2, 0.0), (0.0, 3e-2), (1e-2, 3e-2)], ids=["l1", "l2", "elastic"]
)
def test_penalty_value_and_grad_match_reference(l1, l2):
    model = small_cnn()
    penalty = WeightPenalty(model, l1=l1, l2=l2)
    assert_penalty_matches(model, penalty, DEFAULT_CNN_NAMES, l1, l2)


def test_penalty_excluded_params_get_no_grad():
    model = small_cnn()
    WeightPenalty(model, l1=0.1, l2=0.1)().backward()
    for name, param in model.named_parameters():
        if name in DEFAULT_CNN_NAMES:
            assert param.grad is not None and torch.count_nonzero(param.grad) > 0
        else:
            assert param.grad is None, name


def test_penalty_l1_grad_is_zero_at_zero_weight():
    model = small_cnn()
    with torch.no_grad():
        model.head.weight[0, 0] = 0.0
    WeightPenalty(model, l1=0.5, l2=0.25)().backward()
    assert model.head.weight.grad[0, 0].item() == 0.0
    torch.testing.assert_close(
        model.head.weight.grad[1],
        0.5 * torch.sign(model.head.weight[1]) + 0.25 * model.head.weight[1],
    )


def test_penalty_l2_gradient_equals_weight_decay_update():
    model = small_cnn()
    l2 = 0.1
    WeightPenalty(model, l2=l2)().backward()
    torch.testing.assert_close(model.head.weight.grad, l2 * model.head.weight.detach())


def test_penalty_include_and_exclude_by_type():
    model = small_cnn()
    names = ["features.0.weight"]
    assert_penalty_matches(model, WeightPenalty(model, l2=0.2, include=nn.Conv2d), names, 0, 0.2)
    # a module type in include selects its weight, never its bias
    assert WeightPenalty(model, l1=1.0, include=[nn.BatchNorm2d]).names == ("features.1.weight",)
    assert WeightPenalty(model, l1=1.0, exclude=[nn.Linear]).names == ("features.0.weight",)
    assert WeightPenalty(model, l1=1.0, exclude=(nn.Conv2d, nn.Linear)).names == ()


def test_penalty_include_and_exclude_by_name_pattern():
    model = small_cnn()
    biases = ["features.0.bias", "features.1.bias", "head.bias"]
    assert_penalty_matches(model, WeightPenalty(model, l1=0.3, include=["*.bias"]), biases, 0.3, 0)
    assert WeightPenalty(model, l1=1.0, exclude=["head.*"]).names == ("features.0.weight",)
    mixed = WeightPenalty(model, l1=0.1, l2=0.2, include=(*DEFAULT_DECAY_TYPES, "features.1.*"))
    names = ["features.0.weight", "features.1.weight", "features.1.bias", "head.weight"]
    assert_penalty_matches(model, mixed, names, 0.1, 0.2)
    # exclude wins over include; matching is case-sensitive on the qualified name
    both = WeightPenalty(model, l1=1.0, include=["*"], exclude=["*.bias", "features.1.*"])
    assert both.names == ("features.0.weight", "head.weight")
    assert WeightPenalty(model, l1=1.0, include=["HEAD.*"]).names == ()


def test_penalty_skips_frozen_embeddings_and_counts_tied_weights_once():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.Linear(4, 10))
    model[2].weight = model[0].weight  # tied input/output embedding
    model[1].weight.requires_grad_(False)
    penalty = WeightPenalty(model, l2=1.0)
    # the tied weight is owned by the Embedding first (not a default type) -> not penalized
    assert penalty.names == ()
    assert penalty().item() == 0.0
    penalty = WeightPenalty(model, l2=1.0, include=(*DEFAULT_DECAY_TYPES, nn.Embedding))
    assert penalty.names == ("0.weight",)
    expected = 0.5 * (model[0].weight.detach().double() ** 2).sum().item()
    assert penalty().item() == pytest.approx(expected, rel=1e-6)


def test_penalty_resolved_once_at_construction():
    model = small_cnn()
    penalty = WeightPenalty(model, l1=1.0)
    model.head.weight.requires_grad_(False)
    assert penalty.names == tuple(DEFAULT_CNN_NAMES)
    assert len(penalty) == 2


def test_penalty_bf16_autocast_is_float32_and_close_to_fp32_reference():
    model = small_cnn()
    l1, l2 = 1e-3, 1e-2
    fp32_reference = reference_penalty(model, DEFAULT_CNN_NAMES, l1, l2)
    model = model.to(torch.bfloat16)
    penalty = WeightPenalty(model, l1=l1, l2=l2)
    x = torch.randn(2, 3, 8, 8, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        value = penalty()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert value.item() == pytest.approx(fp32_reference, rel=2e-2)  # bf16 weight rounding
    # exact w.r.t. the bf16 weights themselves: accumulation happened in float32
    bf16_reference = reference_penalty(model, DEFAULT_CNN_NAMES, l1, l2)
    assert value.item() == pytest.approx(bf16_reference, rel=1e-5)
    (out.float().sum() * 0 + value).backward()
    w = model.head.weight
    assert w.grad.dtype == torch.bfloat16
    expected = (l1 * torch.sign(w.detach().float()) + l2 * w.detach().float()).bfloat16()
    torch.testing.assert_close(w.grad, expected)


def test_penalty_accumulates_large_bf16_tensors_in_float32():
    layer = nn.Linear(1000, 1000, bias=False).to(torch.bfloat16)
    with torch.no_grad():
        layer.weight.fill_(0.01)
    w = layer.weight[0, 0].double().item()  # 0.01 rounded to bf16
    value = WeightPenalty(layer, l1=1.0, l2=2.0)()
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(1e6 * w + 0.5 * 2.0 * 1e6 * w * w, rel=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_penalty_foreach_path_matches_loop_path(dtype):
    # CPU uses the per-parameter loop; force the fused _foreach_norm path (the CUDA one)
    model = small_cnn().to(dtype)
    looped = WeightPenalty(model, l1=0.01, l2=0.02)
    fused = WeightPenalty(model, l1=0.01, l2=0.02)
    fused._fused = lambda params: True
    assert fused().dtype == torch.float32
    assert fused().item() == pytest.approx(looped().item(), rel=1e-6)
    assert fused._use_foreach  # the foreach call did not fail over to the loop
    if dtype == torch.float32:
        assert_penalty_matches(model, fused, DEFAULT_CNN_NAMES, 0.01, 0.02)


def test_penalty_selection_is_select_parameters():
    model = small_cnn()
    names = [n for n, _ in select_parameters(model, include=["*"], exclude=[nn.BatchNorm2d])]
    assert names == ["features.0.weight", "features.0.bias", "head.weight", "head.bias"]
    penalty = WeightPenalty(model, l1=1.0, include=["*"], exclude=[nn.BatchNorm2d])
    assert penalty.names == tuple(names)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_penalty_on_cuda_matches_cpu_reference():
    model = small_cnn()
    l1, l2 = 1e-2, 3e-2
    reference = reference_penalty(model, DEFAULT_CNN_NAMES, l1, l2)
    cuda_model = small_cnn().cuda().to(torch.bfloat16)
    cuda_model.head.float()  # mixed dtypes on one device
    penalty = WeightPenalty(cuda_model, l1=l1, l2=l2)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        value = penalty()
    assert value.dtype == torch.float32 and value.device.type == "cuda"
    assert value.item() == pytest.approx(reference, rel=2e-2)
    exact = reference_penalty(cuda_model, DEFAULT_CNN_NAMES, l1, l2)
    assert value.item() == pytest.approx(exact, rel=1e-5)
    value.backward()
    w = cuda_model.features[0].weight
    expected = (l1 * torch.sign(w.detach().float()) + l2 * w.detach().float()).bfloat16()
    torch.testing.assert_close(w.grad, expected)
    big = nn.Linear(2000, 2000, bias=False).cuda().to(torch.bfloat16)
    with torch.no_grad():
        big.weight.fill_(0.01)
    v = big.weight[0, 0].double().item()
    assert WeightPenalty(big, l1=1.0)().item() == pytest.approx(4e6 * v, rel=1e-5)


def test_penalty_edge_cases():
    model = small_cnn()
    zero = WeightPenalty(model)()
    assert zero.dtype == torch.float32 and zero.item() == 0.0 and not zero.requires_grad
    empty = WeightPenalty(nn.Sequential(nn.ReLU()), l2=1.0)()
    assert empty.item() == 0.0 and empty.ndim == 0
    with pytest.raises(ValueError):
        WeightPenalty(model, l1=-1.0)
    with pytest.raises(ValueError):
        WeightPenalty(model, l2=float("nan"))
    with pytest.raises(TypeError):
        WeightPenalty(model, l1=1.0, include=[3])
    with pytest.raises(ValueError, match="lazy"):
        WeightPenalty(nn.LazyLinear(3), l2=1.0)
    penalty = WeightPenalty(model, l1=0.0, l2=0.0)
    penalty.l2 = 0.5  # strength can be retuned in place
    assert penalty().item() == pytest.approx(reference_penalty(model, DEFAULT_CNN_NAMES, 0, 0.5))


# ---------------------------------------------------------------- decay_param_groups


class MixedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.pos = nn.Parameter(torch.randn(1, 5, 8))
        self.norm = nn.LayerNorm(8)
        self.conv = nn.Conv1d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm1d(8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)
        self.frozen = nn.Linear(8, 8)
        self.frozen.requires_grad_(False)

    def forward(self, tokens):
        x = self.norm(self.embed(tokens) + self.pos)
        x = self.bn(self.conv(x.transpose(1, 2))).transpose(1, 2)
        x, _ = self.attn(x, x, x)
        return self.head(self.frozen(x).mean(1))


def group_names(model, groups):
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [sorted(by_id[id(p)] for p in g["params"]) for g in groups]


def assert_partition(model, groups):
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)), "a parameter appears in two groups"
    assert set(ids) == trainable


def test_decay_param_groups_default_rule():
    torch.manual_seed(0)
    model = MixedNet()
    groups = decay_param_groups(model, 0.05)
    assert_partition(model, groups)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    assert "lr" not in groups[0]
    decay, no_decay = group_names(model, groups)
    assert decay == ["attn.in_proj_weight", "attn.out_proj.weight", "conv.weight", "head.weight"]
    assert no_decay == sorted(
        [
            "embed.weight",
            "pos",
            "norm.weight",
            "norm.bias",
            "conv.bias",
            "bn.weight",
            "bn.bias",
            "attn.in_proj_bias",
            "attn.out_proj.bias",
            "head.bias",
        ]
    )
    # same default selection as WeightPenalty
    assert decay == sorted(WeightPenalty(model, l2=1.0).names)
    assert not any(n.startswith("frozen.") for names in (decay, no_decay) for n in names)


def test_decay_param_groups_broad_include_never_decays_norms_biases_or_1d():
    torch.manual_seed(0)
    model = MixedNet()
    groups = decay_param_groups(model, 0.1, include=["*"], exclude=["head.*"], lr=3e-4)
    assert_partition(model, groups)
    assert all(g["lr"] == 3e-4 for g in groups)
    decay, no_decay = group_names(model, groups)
    assert decay == [
        "attn.in_proj_weight",
        "attn.out_proj.weight",
        "conv.weight",
        "embed.weight",
        "pos",
    ]
    assert {"norm.weight", "bn.weight", "head.weight", "head.bias", "conv.bias"} <= set(no_decay)
    # no_decay_types=() lets a 2-d parameter owned by a "norm" type through; 1-d never
    groups = decay_param_groups(model, 0.1, include=["*"], no_decay_types=())
    decay, _ = group_names(model, groups)
    assert "norm.weight" not in decay and "head.weight" in decay
    groups = decay_param_groups(model, 0.1, include=["*"], no_decay_types=(nn.Linear,))
    decay, _ = group_names(model, groups)
    assert "head.weight" not in decay and "attn.out_proj.weight" not in decay


def test_decay_param_groups_omits_empty_groups():
    layer = nn.Linear(3, 3, bias=False)
    groups = decay_param_groups(layer, 0.01)
    assert len(groups) == 1 and groups[0]["params"] == [layer.weight]
    norm_only = nn.LayerNorm(3)
    groups = decay_param_groups(norm_only, 0.01)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0
    assert decay_param_groups(nn.ReLU(), 0.01) == []
    with pytest.raises(ValueError):
        decay_param_groups(layer, -0.1)


def test_decay_param_groups_with_adamw_decays_only_the_decay_group():
    torch.manual_seed(0)
    model = MixedNet()
    lr, wd = 0.1, 0.5
    groups = decay_param_groups(model, wd)
    optimizer = torch.optim.AdamW(groups, lr=lr)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    decay_names = set(group_names(model, groups)[0])
    # a real forward/backward, then zero the gradients: the Adam update is exactly 0, so
    # what remains is the decoupled decay p <- p * (1 - lr * wd) on the decay group only
    model(torch.randint(0, 10, (2, 5))).sum().backward()
    for p in model.parameters():
        if p.grad is not None:
            p.grad.zero_()
    optimizer.step()
    for name, param in model.named_parameters():
        if name in decay_names:
            torch.testing.assert_close(param.detach(), before[name] * (1 - lr * wd))
        else:
            torch.testing.assert_close(param.detach(), before[name], rtol=0, atol=0)


# ---------------------------------------------------------------- dropout


def dropout_zoo() -> nn.Module:
    return nn.Sequential(
        nn.Linear(4, 4),
        nn.Dropout(0.1),
        nn.Sequential(nn.Dropout1d(0.1), nn.Dropout2d(0.1), nn.Dropout3d(0.1)),
        nn.AlphaDropout(0.1),
        nn.FeatureAlphaDropout(0.1),
        DropPath(0.1),
        nn.MultiheadAttention(4, 2, dropout=0.1),
    )


def dropout_rates(model):
    from augsvc_client.regularization import DROPOUT_TYPES

    return [m.p for m in model.modules() if isinstance(m, DROPOUT_TYPES)]


def test_set_dropout_changes_every_dropout_layer():
    model = dropout_zoo()
    assert set_dropout(model, 0.3) == 7
    assert dropout_rates(model) == [0.3] * 7
    assert model[6].dropout == 0.1  # attention's float rate is not a layer
    assert set_dropout(model, 0.0, types=(DropPath,)) == 1
    assert model[5].p == 0.0 and model[1].p == 0.3
    assert set_dropout(nn.Linear(2, 2), 0.5) == 0
    with pytest.raises(ValueError):
        set_dropout(model, 1.5)


def test_dropout_schedule_linear_and_cosine_values():
    model = dropout_zoo()
    linear = DropoutSchedule(model, 0.5, 0.1, total_steps=10)
    assert dropout_rates(model) == [0.5] * 7  # p_at(0) applied at construction
    assert linear.p_at(0) == pytest.approx(0.5)
    assert linear.p_at(5) == pytest.approx(0.3)
    assert linear.p_at(10) == pytest.approx(0.1)
    assert linear.p_at(25) == pytest.approx(0.1)
    assert linear.p_at(2) == pytest.approx(0.42)
    cosine = DropoutSchedule(model, 0.0, 0.4, total_steps=4, mode="cosine")
    assert cosine.p_at(0) == pytest.approx(0.0)
    assert cosine.p_at(1) == pytest.approx(0.4 * (1 - math.cos(math.pi / 4)) / 2)
    assert cosine.p_at(2) == pytest.approx(0.2)
    assert cosine.p_at(4) == pytest.approx(0.4)
    warm = DropoutSchedule(model, 0.2, 0.0, total_steps=12, warmup_steps=4)
    assert [warm.p_at(s) for s in (0, 4, 8, 12)] == pytest.approx([0.2, 0.2, 0.1, 0.0])
    jump = DropoutSchedule(model, 0.2, 0.0, total_steps=3, warmup_steps=3)
    assert [jump.p_at(s) for s in (2, 3)] == pytest.approx([0.2, 0.0])


def test_dropout_schedule_step_applies_and_state_dict_round_trips():
    model = dropout_zoo()
    schedule = DropoutSchedule(model, 0.5, 0.1, total_steps=4)
    assert schedule.step() == pytest.approx(0.4)
    assert schedule.step() == pytest.approx(0.3)
    assert dropout_rates(model) == pytest.approx([0.3] * 7)
    state = schedule.state_dict()
    assert state["step_count"] == 2
    other_model = dropout_zoo()
    resumed = DropoutSchedule(other_model, 0.9, 0.9, total_steps=1)
    resumed.load_state_dict(state)
    assert resumed.p == pytest.approx(0.3)
    assert dropout_rates(other_model) == pytest.approx([0.3] * 7)
    for _ in range(5):
        resumed.step()
    assert dropout_rates(other_model) == pytest.approx([0.1] * 7)
    with pytest.raises(ValueError):
        DropoutSchedule(model, 0.1, 0.2, total_steps=5, mode="step")
    with pytest.raises(ValueError):
        DropoutSchedule(model, 0.1, 0.2, total_steps=5, warmup_steps=6)


# ---------------------------------------------------------------- MC dropout


def mc_model(p: float) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(p), nn.Linear(32, 3)
    )
    model(torch.randn(64, 8))  # non-trivial BN running statistics
    return model


def modes(model):
    return {name: m.training for name, m in model.named_modules()}


def test_mc_dropout_sets_and_restores_modes():
    model = mc_model(0.5)
    model.train()
    model[4].eval()  # a mixed state must come back exactly
    saved = modes(model)
    with mc_dropout(model) as inner:
        assert inner is model
        assert modes(model) == {
            "": False,
            "0": False,
            "1": False,
            "2": False,
            "3": True,
            "4": False,
        }
    assert modes(model) == saved
    with pytest.raises(RuntimeError, match="boom"), mc_dropout(model):
        raise RuntimeError("boom")
    assert modes(model) == saved


def test_mc_predict_std_zero_without_dropout():
    model = mc_model(0.0)
    model.train()
    saved = modes(model)
    x = torch.randn(5, 8)
    mean, std = mc_predict(model, x, n=10)
    assert torch.equal(std, torch.zeros(5, 3))
    model.eval()
    torch.testing.assert_close(mean, model(x).detach(), rtol=0, atol=0)
    model.train()
    assert modes(model) == saved


def test_mc_predict_std_positive_with_dropout():
    model = mc_model(0.5)
    model.eval()
    x = torch.randn(5, 8)
    torch.manual_seed(1)
    mean, std = mc_predict(model, x, n=30)
    assert mean.shape == std.shape == (5, 3)
    assert not mean.requires_grad
    assert (std > 0).all()
    assert modes(model) == {name: False for name in modes(model)}
    # matches the two-pass formula on the same draws
    torch.manual_seed(1)
    with torch.no_grad(), mc_dropout(model):
        outs = torch.stack([model(x) for _ in range(30)])
    torch.testing.assert_close(mean, outs.mean(0))
    torch.testing.assert_close(std, outs.std(0, correction=1))
    with pytest.raises(ValueError):
        mc_predict(model, x, n=1)


# ---------------------------------------------------------------- DropPath


def test_drop_path_identity_in_eval_and_at_zero():
    x = torch.randn(8, 3, 4)
    module = DropPath(0.5).eval()
    assert module(x) is x
    assert drop_path(x, 0.5, training=False) is x
    assert drop_path(x, 0.0, training=True) is x
    assert torch.equal(drop_path(x, 1.0, training=True), torch.zeros_like(x))
    with pytest.raises(ValueError):
        DropPath(1.2)
    with pytest.raises(ValueError):
        drop_path(x, -0.1, training=True)


def test_drop_path_zeros_whole_samples():
    p = 0.4
    x = torch.ones(500, 3, 4, 5)
    out = DropPath(p).train()(x, generator=torch.Generator().manual_seed(0))
    per_sample = out.flatten(1)
    first = per_sample[:, :1]
    assert torch.equal(per_sample, first.expand_as(per_sample))  # constant within a sample
    dropped = first == 0
    assert 0 < dropped.sum() < 500
    torch.testing.assert_close(first[~dropped], torch.full_like(first[~dropped], 1 / (1 - p)))
    unscaled = drop_path(
        x, p, True, scale_by_keep=False, generator=torch.Generator().manual_seed(0)
    )
    assert set(unscaled.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(unscaled * (1 / (1 - p)), out)


def test_drop_path_keeps_expected_value():
    p, n = 0.3, 200_000
    keep = 1 - p
    gen = torch.Generator().manual_seed(1234)
    out = drop_path(torch.ones(n, 1), p, True, generator=gen)
    # each entry is Bernoulli(keep) / keep: mean 1, variance p / keep
    sigma_mean = math.sqrt(p / keep / n)
    assert abs(out.mean().item() - 1.0) < 5 * sigma_mean
    dropped = (out == 0).double().mean().item()
    assert abs(dropped - p) < 5 * math.sqrt(p * keep / n)


def test_drop_path_module_equals_functional_and_backprops():
    x = torch.randn(64, 6, requires_grad=True)
    module = DropPath(0.25).train()
    a = module(x, generator=torch.Generator().manual_seed(7))
    b = drop_path(x, 0.25, True, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    torch.manual_seed(3)
    c = module(x)
    torch.manual_seed(3)
    d = drop_path(x, 0.25, training=True)
    assert torch.equal(c, d)
    a.sum().backward()
    kept = a.detach().abs().sum(1) > 0
    torch.testing.assert_close(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.75))
    assert torch.equal(x.grad[~kept], torch.zeros_like(x.grad[~kept]))
