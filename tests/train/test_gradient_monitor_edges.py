"""GradientMonitor's edges left by the mutation runs (issue 15): the detections at their exact
thresholds (gradients set by hand, so that the norms are exact), the defaults in use, a single
layer, layers without a bias, a record before any backward, forwards that must not be captured
(no grad, or a step that does not record), the forward order, the rectifier's stat names, the
alerts' steps, and what a writer receives over two steps."""

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
)


def grads(layer, w, b=None):
    """Set ``layer``'s gradients by hand: its weight's all ``w``, its bias' all ``b``."""
    layer.weight.grad = torch.full_like(layer.weight, w)
    if b is not None:
        layer.bias.grad = torch.full_like(layer.bias, b)


def record_quietly(mon):
    """``mon.record()`` with any warning an error (a detection that must not fire)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return mon.record()


def norm_of(mon, step):
    return next(
        r["value"] for r in mon.table(layer="global", stat="grad_norm") if r["step"] == step
    )


# ------------------------------------------------------------------ thresholds, exactly
def test_exploding_by_factor_is_strictly_above_factor_times_the_minimum():
    """Norms 5 then 500 = 100 x 5 exactly: no alert (the rule is ``>``); then 505: an alert at
    the default factor 100 (101 would not alert)."""
    m = nn.Sequential(nn.Linear(1, 1))
    lin = m[0]
    mon = GradientMonitor(m)
    grads(lin, 3.0, 4.0)
    mon.record()
    assert norm_of(mon, 0) == 5.0
    grads(lin, 300.0, 400.0)
    record_quietly(mon)
    assert norm_of(mon, 1) == 500.0 and mon.alerts == []
    mon = GradientMonitor(m)
    grads(lin, 3.0, 4.0)
    mon.record()
    grads(lin, 303.0, 404.0)  # 505 = 101 x 5
    with pytest.warns(ExplodingGradientWarning) as rec:
        mon.record()
    assert str(rec[0].message) == (
        "step 1: exploding gradients: global gradient norm 505 is 101 times its recent minimum "
        "5 (factor 100)"
    )
    assert mon.alerts == [{"step": 1, "kind": "ExplodingGradientWarning",
                           "message": str(rec[0].message)}]  # fmt: skip


def test_the_default_window_holds_the_last_10_norms():
    """5, then ten norms of 250 (50 x), then 1000: 200 x the first but 4 x the last ten's
    minimum, so no alert with the default window of 10 (a window of 11 would see the 5)."""
    m = nn.Sequential(nn.Linear(1, 1))
    lin = m[0]
    mon = GradientMonitor(m)
    grads(lin, 3.0, 4.0)
    mon.record()
    for _ in range(10):
        grads(lin, 150.0, 200.0)
        mon.record()
    grads(lin, 600.0, 800.0)
    record_quietly(mon)
    assert norm_of(mon, 11) == 1000.0 and mon.alerts == []


def test_exploding_by_threshold_is_strictly_above_it():
    m = nn.Sequential(nn.Linear(1, 1))
    lin = m[0]
    mon = GradientMonitor(m, exploding_norm=5.0)
    grads(lin, 3.0, 4.0)
    record_quietly(mon)
    assert mon.alerts == []
    grads(lin, 3.0, 4.5)
    with pytest.warns(ExplodingGradientWarning):
        mon.record(7)
    assert [a["step"] for a in mon.alerts] == [7]


def test_vanishing_is_strictly_below_the_ratio():
    """First layer's weight-gradient norm 1, the last's 4: a ratio of 0.25 exactly, at the
    threshold: no alert."""
    m = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1))
    mon = GradientMonitor(m, vanishing_ratio=0.25)
    grads(m[0], 1.0)
    grads(m[1], 4.0)
    rows = record_quietly(mon)
    assert {(r["layer"], r["stat"]): r["value"] for r in rows}[
        ("global", "first_last_ratio")
    ] == 0.25
    assert mon.alerts == []


def test_a_zero_norm_in_the_window_is_no_minimum():
    """A step with no gradient at all (norm 0) cannot make every later step 'explode'."""
    m = nn.Sequential(nn.Linear(1, 1))
    lin = m[0]
    mon = GradientMonitor(m)
    grads(lin, 0.0, 0.0)
    mon.record()
    grads(lin, 3.0, 4.0)
    record_quietly(mon)
    assert mon.alerts == []


def test_a_nonfinite_global_norm_stays_out_of_the_window():
    """NaN, then 5, then 5,000: the alert compares with 5 (a NaN kept in the window would
    hide it: ``min`` of a list starting with NaN is NaN)."""
    m = nn.Sequential(nn.Linear(1, 1))
    lin = m[0]
    mon = GradientMonitor(m, warn=False)
    grads(lin, math.nan, 0.0)
    mon.record()
    grads(lin, 3.0, 4.0)
    mon.record()
    grads(lin, 3000.0, 4000.0)
    mon.record()
    assert [(a["step"], a["kind"]) for a in mon.alerts] == [
        (0, "NonFiniteGradientWarning"),
        (2, "ExplodingGradientWarning"),
    ]


def test_two_bad_layers_are_joined_and_the_alert_has_its_step():
    m = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 1))
    mon = GradientMonitor(m, activations=False)
    grads(m[0], math.inf, 0.0)
    grads(m[1], math.nan, 0.0)
    with pytest.warns(NonFiniteGradientWarning) as rec:
        mon.record(3)
    msg = "step 3: non-finite values in layer(s) 0 (weight_grad_norm=inf), 1 (weight_grad_norm=nan)"
    assert str(rec[0].message) == msg
    assert mon.alerts[0] == {"step": 3, "kind": "NonFiniteGradientWarning", "message": msg}


# ------------------------------------------------------------------ what is recorded
def test_a_single_layer_a_record_before_backward_and_layers_without_a_bias():
    net = nn.Sequential(nn.Linear(2, 1, bias=False))
    lin = net[0]
    mon = GradientMonitor(net, exploding_norm=1.0)
    assert mon.model is net and [n for n, _ in mon.layers] == ["0"]
    rows = record_quietly(mon)  # before any backward: no gradients, nothing to detect
    assert [r["stat"] for r in rows] == ["weight_norm"] and mon.alerts == []
    lin(torch.ones(3, 2)).sum().backward()
    stats = [r["stat"] for r in mon.record()]
    # no bias row, and with one layer no first / last ratio
    assert "bias_grad_norm" not in stats and "first_last_ratio" not in stats
    assert {"weight_grad_norm", "weight_norm", "grad_norm"} <= set(stats)
    emb = nn.Sequential(nn.Embedding(4, 2), nn.Linear(2, 1))  # a weight and no bias attribute
    mon = GradientMonitor(emb, layers=(nn.Embedding, nn.Linear))
    emb(torch.tensor([1, 2])).sum().backward()
    rows = {(r["layer"], r["stat"]) for r in mon.record()}
    assert ("0", "weight_grad_norm") in rows and ("0", "bias_grad_norm") not in rows
    assert ("global", "first_last_ratio") in rows


def test_the_default_histograms_off_and_50_bins():
    m = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    mon = GradientMonitor(m)
    m(torch.ones(2, 2)).sum().backward()
    mon.record()
    assert mon.histograms == [] and mon.bins == 50
    mon = GradientMonitor(m, histograms=True)
    m.zero_grad()
    m(torch.ones(2, 2)).sum().backward()
    mon.record()
    assert mon.histograms and all(h["counts"].shape == (50,) for h in mon.histograms)


def test_a_rectifiers_rows_are_named_dead_and_zero():
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    mon = GradientMonitor(m)
    m(torch.randn(4, 2)).sum().backward()
    stats = {r["stat"] for r in mon.record() if r["layer"] == "1"}
    assert stats == {"act_mean", "act_std", "dead", "zero"}


class Reordered(nn.Module):
    """``second`` is registered first and called second."""

    def __init__(self):
        super().__init__()
        self.second = nn.Linear(3, 1)
        self.first = nn.Linear(2, 3)

    def forward(self, x):
        return self.second(self.first(x))


def test_first_and_last_are_in_forward_order():
    torch.manual_seed(0)
    m = Reordered()
    mon = GradientMonitor(m)
    m(torch.randn(4, 2)).sum().backward()
    rows = {(r["layer"], r["stat"]): r["value"] for r in mon.record()}
    assert mon.order == ["first", "second"]
    want = rows[("first", "weight_grad_norm")] / rows[("second", "weight_grad_norm")]
    assert rows[("global", "first_last_ratio")] == pytest.approx(want, rel=1e-6)


def test_forwards_without_grad_or_on_steps_not_recorded_are_not_captured():
    """An evaluation forward under no_grad between backward and record leaves the training
    forward's statistics; a forward on a step that does not record captures nothing."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    x, other = torch.randn(4, 2), 10 * torch.randn(4, 2)
    mon = GradientMonitor(m, every=2)
    z = m[0](x)
    a = m[1](z)
    m[2](a).sum().backward()
    with torch.no_grad():
        m(other)
    rows = {(r["layer"], r["stat"]): r["value"] for r in mon.record()}
    assert rows[("0", "preact_mean")] == pytest.approx(float(z.mean()), rel=1e-6)
    assert rows[("1", "act_mean")] == pytest.approx(float(a.mean()), rel=1e-6)
    assert not mon.active
    m(x).sum().backward()  # step 1 of every 2: not recorded, nothing kept
    assert mon._outputs == {} and mon._acts == {} and mon._out_grads == {}
    assert mon.record() == []


# ------------------------------------------------------------------ writers
class ScalarsOnly:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))


class Writer(ScalarsOnly):
    def __init__(self):
        super().__init__()
        self.hists = []

    def add_histogram(self, tag, values, step):
        self.hists.append((tag, step))


def test_each_record_writes_only_its_own_histograms():
    m = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    w = Writer()
    mon = GradientMonitor(m, histograms=True, bins=4, writer=w)
    for s in range(2):
        m.zero_grad()
        m(torch.randn(3, 2)).sum().backward()
        mon.record(s)
    assert len(mon.histograms) == 6 and len(w.hists) == 6
    assert sorted(s for _, s in w.hists) == [0, 0, 0, 1, 1, 1]
    # a writer without add_histogram gets the scalars only
    s = ScalarsOnly()
    mon = GradientMonitor(m, histograms=True, writer=s)
    m(torch.randn(3, 2)).sum().backward()
    rows = mon.record()
    assert len(s.scalars) == len(rows) and mon.histograms


def test_detach_drops_a_writer_it_owns(tmp_path):
    pytest.importorskip("tensorboard")
    m = nn.Sequential(nn.Linear(2, 1))
    mon = GradientMonitor(m, tensorboard=str(tmp_path / "tb"))
    mon.detach()
    assert mon.writer is None
    m(torch.ones(1, 2)).sum().backward()
    assert mon.record()  # no writer: the rows are kept, nothing is written
