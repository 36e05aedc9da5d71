"""GradientMonitor against hand computations on a tiny network (written for its mutants): every
row of a recorded step, ``every``, the histograms and what a writer receives, each detection
with its full message and the ``warn`` modes, ``detach``, and the invalid settings."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from smithing.train.diagnostics import (
    ExplodingGradientWarning,
    GradientMonitor,
    NonFiniteGradientWarning,
    VanishingGradientWarning,
)


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 2))


def step(model, x, scale=1.0):
    model.zero_grad()
    out = model(x)
    (scale * out.pow(2).sum()).backward()
    return out


class Writer:
    def __init__(self):
        self.scalars, self.hists, self.closed = [], [], False

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def add_histogram(self, tag, values, step):
        self.hists.append((tag, values, step))

    def close(self):
        self.closed = True


def test_one_recorded_step_row_by_row():
    m = net()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    mon = GradientMonitor(m)
    grads = {}
    m.zero_grad()
    z1 = m[0](x)
    z1.retain_grad()
    a = m[1](z1)
    z2 = m[2](a)
    z2.retain_grad()
    z2.pow(2).sum().backward()
    grads = {"0": z1.grad, "2": z2.grad}
    rows = mon.record()
    got = {(r["layer"], r["stat"]): r["value"] for r in rows}
    assert all(r["step"] == 0 for r in rows) and rows == mon.records
    want = {}
    for name, z in (("0", z1), ("2", z2)):
        lay = m[int(name)]
        want[(name, "weight_grad_norm")] = float(lay.weight.grad.norm())
        want[(name, "bias_grad_norm")] = float(lay.bias.grad.norm())
        want[(name, "weight_norm")] = float(lay.weight.norm())
        want[(name, "preact_mean")] = float(z.mean())
        want[(name, "preact_std")] = float(z.std(correction=0))
        want[(name, "output_grad_norm")] = float(grads[name].norm())
        want[(name, "output_grad_std")] = float(grads[name].std(correction=0))
    want[("1", "act_mean")] = float(a.mean())
    want[("1", "act_std")] = float(a.std(correction=0))
    want[("1", "saturated")] = float(((a < 0.01) | (a > 0.99)).float().mean())
    sq = [m[i].weight.grad.norm() ** 2 + m[i].bias.grad.norm() ** 2 for i in (0, 2)]
    want[("global", "grad_norm")] = float(torch.stack(sq).sum().sqrt())
    want[("global", "first_last_ratio")] = float(m[0].weight.grad.norm() / m[2].weight.grad.norm())
    assert set(got) == set(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-6, abs=1e-7), k
    assert mon.order == ["0", "2"] and mon.alerts == []
    assert mon.series("0", "weight_norm") == ([0], [got[("0", "weight_norm")]])
    assert mon.table(layer="global", stat="grad_norm") == [
        r for r in rows if r["layer"] == "global" and r["stat"] == "grad_norm"
    ]
    assert len(mon.table(layer="1")) == 3 and len(mon.table(stat="weight_norm")) == 2


def test_every_and_the_default_step():
    m = net()
    x = torch.randn(2, 3)
    mon = GradientMonitor(m, every=2, activations=False)
    counts = []
    for _ in range(5):
        step(m, x)
        counts.append(len(mon.record()))
    assert counts[1] == counts[3] == 0 and counts[0] == counts[2] == counts[4] > 0
    assert sorted({r["step"] for r in mon.records}) == [0, 2, 4]
    assert {r["layer"] for r in mon.records} == {"0", "2", "global"}  # no activation rows
    step(m, x)
    assert not mon.active and mon.on_after_backward(step=99) == []  # call 5 of every 2
    step(m, x)
    assert mon.active and {r["step"] for r in mon.on_after_backward(step=99)} == {99}


def test_histograms_and_the_writer():
    m = net()
    x = torch.randn(4, 3)
    w = Writer()
    mon = GradientMonitor(m, histograms=True, bins=5, writer=w)
    step(m, x)
    rows = mon.record(7)
    assert sorted((h["layer"], h["kind"]) for h in mon.histograms) == [
        ("0", "output_grad"), ("1", "activation"), ("2", "output_grad")
    ]  # fmt: skip
    act = next(h for h in mon.histograms if h["kind"] == "activation")
    assert torch.equal(act["edges"], torch.linspace(0.0, 1.0, 6)) and act["counts"].sum() == 16
    assert all(h["step"] == 7 and h["counts"].shape == (5,) for h in mon.histograms)
    assert w.scalars == [(f"{r['layer']}/{r['stat']}", r["value"], 7) for r in rows]
    assert sorted(t for t, _, _ in w.hists) == ["0/output_grad", "1/activation", "2/output_grad"]
    tag, values, s = next(h for h in w.hists if h[0] == "1/activation")
    centers = (act["edges"][1:] + act["edges"][:-1]) / 2
    assert s == 7 and torch.equal(values, torch.repeat_interleave(centers, act["counts"].long()))
    mon.detach()
    assert not w.closed and mon.writer is w  # a writer given is the caller's to close
    step(m, x)
    assert {r["layer"] for r in mon.record()} == {"0", "2", "global"}  # no hooks: no activations
    assert mon._outputs == {} and mon._acts == {}


def test_detach_removes_the_hooks():
    m = net()
    mon = GradientMonitor(m)
    mon.detach()
    step(m, torch.randn(2, 3))
    rows = mon.record()
    assert {r["stat"] for r in rows} == {"weight_grad_norm", "bias_grad_norm", "weight_norm",
                                          "grad_norm", "first_last_ratio"}  # fmt: skip
    assert mon.order == []


def test_vanishing_gradients_are_detected_with_their_message():
    m = net()
    with torch.no_grad():
        m[2].weight.mul_(1e-4)  # the first layer's gradient carries this factor; the last not
    x = torch.randn(3, 3)
    mon = GradientMonitor(m, vanishing_ratio=0.5)
    step(m, x)
    with pytest.warns(VanishingGradientWarning) as rec:
        rows = mon.record()
    ratio = next(r["value"] for r in rows if r["stat"] == "first_last_ratio")
    msg = (f"step 0: vanishing gradients: the gradient norm of the first layer '0' is "
           f"{ratio:.3g} times that of the last layer '2' (threshold 0.5)")  # fmt: skip
    assert [str(w.message) for w in rec] == [msg]
    assert mon.alerts == [{"step": 0, "kind": "VanishingGradientWarning", "message": msg}]
    assert GradientMonitor(net(), vanishing_ratio=0.0).vanishing_ratio == 0.0


def test_exploding_gradients_by_factor_and_by_threshold_and_the_warn_modes():
    m = net()
    x = torch.randn(3, 3)
    mon = GradientMonitor(m, exploding_factor=100.0, window=2, warn="always")
    step(m, x)
    n0 = next(r["value"] for r in mon.record() if r["stat"] == "grad_norm")
    step(m, x, scale=1e3)
    with pytest.warns(ExplodingGradientWarning) as rec:
        n1 = next(r["value"] for r in mon.record() if r["stat"] == "grad_norm")
    assert str(rec[0].message) == (
        f"step 1: exploding gradients: global gradient norm {n1:.3g} is {n1 / n0:.3g} times its "
        f"recent minimum {n0:.3g} (factor 100)"
    )
    step(m, x, scale=1e3)  # still 1,000 x the minimum of the last 2 recorded (n0, n1)
    with pytest.warns(ExplodingGradientWarning):  # warn="always": every time
        mon.record()
    step(m, x, scale=1e3)  # window 2: n0 has left it (n1, n1)
    mon.record()
    assert [a["step"] for a in mon.alerts] == [1, 2]
    # by threshold, warned once per kind by default
    mon = GradientMonitor(m, exploding_norm=1e-9)
    with pytest.warns(ExplodingGradientWarning) as rec:
        for _ in range(3):
            step(m, x)
            mon.record()
    assert len(rec) == 1 and len(mon.alerts) == 3
    assert mon.alerts[0]["message"].startswith("step 0: exploding gradients: global gradient norm ")
    assert mon.alerts[0]["message"].endswith(" exceeds 1e-09")
    quiet = GradientMonitor(m, exploding_norm=1e-9, warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        step(m, x)
        quiet.record()
    assert len(quiet.alerts) == 1
    assert GradientMonitor(m, warn=True).warn == "once"


def test_non_finite_values_name_the_layer():
    m = net()
    x = torch.randn(2, 3)
    mon = GradientMonitor(m, activations=False)
    m.zero_grad()
    m(x).sum().backward()
    m[2].weight.grad[0, 0] = float("nan")
    with pytest.warns(NonFiniteGradientWarning) as rec:
        mon.record()
    assert str(rec[0].message) == "step 0: non-finite values in layer(s) 2 (weight_grad_norm=nan)"
    norm = [r for r in mon.records if r["stat"] == "grad_norm"]
    assert math.isnan(norm[0]["value"])  # the global rows are not named, and detect no more


INVALID = [
    ({"every": 0}, "every=0 is invalid: expected a positive int"),
    ({"every": 1.5}, "every=1.5 is invalid: expected a positive int"),
    ({"tensorboard": "runs", "writer": Writer()},
     "tensorboard='runs' is invalid: expected None when writer= is given (one or the other)"),
    ({"writer": object()}, "writer='object' is invalid: expected an object with "
     "add_scalar(tag, value, step), e.g. a SummaryWriter"),
    ({"bins": 0}, "bins=0 is invalid: expected a positive int"),
    ({"bins": 2.0}, "bins=2.0 is invalid: expected a positive int"),
    ({"vanishing_ratio": -1.0}, "vanishing_ratio=-1.0 is invalid: expected a non-negative number"),
    ({"exploding_factor": 1.0}, "exploding_factor=1.0 is invalid: expected a number > 1"),
    ({"window": 0}, "window=0 is invalid: expected a positive int"),
    ({"window": 2.0}, "window=2.0 is invalid: expected a positive int"),
    ({"exploding_norm": 0.0}, "exploding_norm=0.0 is invalid: expected None or a positive number"),
    ({"warn": "sometimes"},
     "warn='sometimes' is invalid: expected 'once', 'always', True (= 'once') or False"),
    ({"layers": (nn.Conv1d,)}, "layers=(<class 'torch.nn.modules.conv.Conv1d'>,) is invalid: "
     "expected a selector matching at least one layer"),
]  # fmt: skip


@pytest.mark.parametrize("kwargs, message", INVALID, ids=[f"case{i}" for i in range(len(INVALID))])
def test_invalid_settings(kwargs, message):
    with pytest.raises(ValueError) as err:
        GradientMonitor(net(), **kwargs)
    assert str(err.value) == message


def test_accepted_edges():
    GradientMonitor(net(), every=1, bins=1, window=1, exploding_factor=1.5, exploding_norm=1e-6,
                    warn="always")  # fmt: skip
    with GradientMonitor(net(), warn=False) as mon:
        assert mon.active
    assert mon._handles == []
