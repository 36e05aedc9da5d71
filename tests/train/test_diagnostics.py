"""smithing.train.diagnostics: stats equal hand computations; warnings fire when they should."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from smithing import init
from smithing.nn import MLP
from smithing.train.diagnostics import (
    ExplodingGradientWarning,
    GradientMonitor,
    NonFiniteGradientWarning,
    VanishingGradientWarning,
    activation_stats,
    layer_gradient_norms,
)
from tensortools import gen


def tiny(activation="sigmoid", seed=0):
    torch.manual_seed(seed)
    return MLP(4, (5, 3), 2, activation)


def batch(n=8, seed=1):
    g = gen(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 2, (n,), generator=g)


def test_monitor_matches_manual_computation():
    model = tiny("tanh")
    x, y = batch()
    mon = GradientMonitor(model)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    rows = mon.record(step=3)
    mon.detach()
    got = {(r["layer"], r["stat"]): r["value"] for r in rows}
    assert all(r["step"] == 3 for r in rows)
    # manual forward with retained intermediates
    l1, l2, l3 = model.linears
    z1 = x @ l1.weight.T + l1.bias
    a1 = torch.tanh(z1)
    z2 = a1 @ l2.weight.T + l2.bias
    a2 = torch.tanh(z2)
    z3 = a2 @ l3.weight.T + l3.bias
    z1.retain_grad(), z2.retain_grad(), z3.retain_grad()
    F.cross_entropy(z3, y).backward(inputs=[z1, z2, z3])
    for name, lin, z in (("net.1", l1, z1), ("net.3", l2, z2), ("net.5", l3, z3)):
        ref_norm = torch.linalg.norm(lin.weight.grad).item()
        assert got[(name, "weight_grad_norm")] == pytest.approx(ref_norm, rel=1e-6)
        assert got[(name, "bias_grad_norm")] == pytest.approx(
            torch.linalg.norm(lin.bias.grad).item(), rel=1e-6
        )
        assert got[(name, "preact_mean")] == pytest.approx(z.mean().item(), abs=1e-6)
        assert got[(name, "preact_std")] == pytest.approx(z.std(correction=0).item(), rel=1e-5)
        assert got[(name, "output_grad_norm")] == pytest.approx(
            torch.linalg.norm(z.grad).item(), rel=1e-5
        )
    for name, a in (("net.2", a1), ("net.4", a2)):
        assert got[(name, "act_mean")] == pytest.approx(a.mean().item(), abs=1e-6)
        assert got[(name, "act_std")] == pytest.approx(a.std(correction=0).item(), rel=1e-5)
        assert got[(name, "saturated")] == pytest.approx((a.abs() > 0.99).float().mean().item())
    total = sum(p.grad.square().sum() for p in model.parameters()).sqrt().item()
    assert got[("global", "grad_norm")] == pytest.approx(total, rel=1e-6)
    ratio = torch.linalg.norm(l1.weight.grad) / torch.linalg.norm(l3.weight.grad)
    assert got[("global", "first_last_ratio")] == pytest.approx(ratio.item(), rel=1e-5)
    assert mon.order == ["net.1", "net.3", "net.5"]
    assert len(model.net[1]._forward_hooks) == 0  # detached


def test_layer_gradient_norms_and_grad_untouched():
    model = tiny("relu")
    x, y = batch()
    loss = F.cross_entropy(model(x), y)
    norms = layer_gradient_norms(model, loss)
    assert all(lin.weight.grad is None for lin in model.linears)
    loss.backward()
    assert list(norms) == ["net.1", "net.3", "net.5"]
    for name, lin in zip(norms, model.linears, strict=True):
        assert norms[name] == pytest.approx(torch.linalg.norm(lin.weight.grad).item(), rel=1e-6)


def test_saturation_on_crafted_input():
    model = nn.Sequential(
        nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.ReLU()
    )
    with torch.no_grad():
        for lin in model[::2]:
            lin.weight.copy_(torch.eye(4))
            lin.bias.zero_()
    # sigmoid(x): column 0 -> > 0.99, column 1 -> < 0.01, others mid
    x = torch.tensor([[10.0, -10.0, 0.0, 1.0], [10.0, -10.0, 0.5, -1.0]])
    stats = activation_stats(model, x)
    assert stats["1"]["saturated"] == pytest.approx(4 / 8)
    s = torch.sigmoid(x)
    t = torch.tanh(s)  # all in (0, 0.77): none saturated
    assert stats["3"]["saturated"] == 0.0
    assert stats["3"]["mean"] == pytest.approx(t.mean().item(), rel=1e-6)
    assert stats["0"]["mean"] == pytest.approx(x.mean().item(), abs=1e-6)  # Linear: pre-activation
    # ReLU after identity of positive tanh values: nothing dead; a negative column is dead
    assert stats["5"]["dead"] == 0.0
    with torch.no_grad():
        model[4].bias.copy_(torch.tensor([-1.0, 0.0, 0.0, 0.0]))
    stats = activation_stats(model, x, bins=10)
    assert stats["5"]["dead"] == pytest.approx(1 / 4)
    assert stats["5"]["zero"] == pytest.approx(2 / 8)
    assert stats["1"]["hist"].sum().item() == 8 and stats["1"]["edges"][0] == 0.0
    tanh_model = nn.Sequential(nn.Tanh())
    st = activation_stats(tanh_model, torch.tensor([[3.0, -3.0, 0.1, 2.0]]))
    assert st["0"]["saturated"] == pytest.approx(2 / 4)  # |tanh(3)| = 0.995 > 0.99


def _deep(activation, rule, depth=10, width=64, **params):
    torch.manual_seed(0)
    model = MLP(32, (width,) * depth, 10, activation)
    init.apply(model, rule, generator=gen(), **params)
    return model


def _one_step(model, monitor):
    x = torch.randn(64, 32, generator=gen(2))
    y = torch.randint(0, 10, (64,), generator=gen(3))
    F.cross_entropy(model(x), y).backward()
    return monitor.record()


def test_vanishing_warning_deep_sigmoid_small_uniform():
    model = _deep("sigmoid", "uniform", a=0.05)
    mon = GradientMonitor(model)
    with pytest.warns(VanishingGradientWarning, match=r"first layer 'net.1'.*last layer 'net.21'"):
        _one_step(model, mon)
    assert mon.alerts[0]["kind"] == "VanishingGradientWarning"


def test_no_vanishing_warning_relu_he():
    model = _deep("relu", "he_normal")
    mon = GradientMonitor(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=VanishingGradientWarning)
        rows = _one_step(model, mon)
    ratio = next(r["value"] for r in rows if r["stat"] == "first_last_ratio")
    assert ratio > 1e-2
    assert not mon.alerts


def test_every_histograms_and_series():
    model = tiny("sigmoid")
    mon = GradientMonitor(model, every=2, histograms=True, bins=5)
    for step in range(5):
        x, y = batch(seed=step)
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        mon.record(step)
    steps, values = mon.series("net.1", "weight_grad_norm")
    assert steps == [0, 2, 4] and len(values) == 3
    assert {h["kind"] for h in mon.histograms} == {"activation", "output_grad"}
    act = [h for h in mon.histograms if h["kind"] == "activation"]
    assert len(act) == 3 * 2 and all(
        h["counts"].sum() == 8 * h_units for h, h_units in zip(act, [5, 3] * 3, strict=True)
    )
    assert all(len(h["edges"]) == 6 for h in mon.histograms)


def test_nonfinite_and_exploding_warnings():
    model = tiny("relu")
    mon = GradientMonitor(model, exploding_factor=10, window=3)
    x, y = batch()
    F.cross_entropy(model(x), y).backward()
    mon.record()
    for p in model.parameters():
        p.grad.mul_(1000.0)
    with pytest.warns(ExplodingGradientWarning, match="times its recent minimum"):
        mon.record()  # no forward: only parameter gradients are re-read
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    model.net[3].weight.grad[0, 0] = float("nan")
    with pytest.warns(NonFiniteGradientWarning, match=r"net\.3 \(weight_grad_norm=nan\)"):
        mon.record()
    mon2 = GradientMonitor(model, exploding_norm=1e-9, warn=False)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    mon2.record()
    assert any(a["kind"] == "ExplodingGradientWarning" for a in mon2.alerts)


def test_monitor_validates_arguments():
    with pytest.raises(ValueError, match="every=0 is invalid"):
        GradientMonitor(tiny(), every=0)
    with pytest.raises(ValueError, match="warn='loud' is invalid"):
        GradientMonitor(tiny(), warn="loud")
