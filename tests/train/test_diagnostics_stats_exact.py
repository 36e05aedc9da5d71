"""smithing.train.diagnostics' one-pass statistics by hand on tiny models (written for the
module's mutants): the histogram ranges per activation kind, the per-layer gradient norms
(unused layers get 0), the activation statistics of each module kind with their thresholds,
and the messages of bad selectors and bin counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from smithing.train.diagnostics import activation_stats, layer_gradient_norms
from smithing.train.diagnostics.stats import _activation_tensors, _histogram, _select

D = torch.float64


@pytest.mark.parametrize(
    "kind, lo, hi", [("sigmoid", 0.0, 1.0), ("tanh", -1.0, 1.0), ("other", -3.0, 5.0)]
)
def test_histogram_ranges(kind, lo, hi):
    t = torch.tensor([-3.0, 0.25, 0.5, 0.75, 5.0])
    h = _histogram(t, 4, kind)
    assert torch.equal(h["edges"], torch.linspace(lo, hi, 5))
    assert torch.equal(h["counts"], torch.histc(t, bins=4, min=lo, max=hi))


def test_histogram_of_a_constant_and_of_nothing_finite():
    h = _histogram(torch.full((3,), 2.0), 2)
    assert torch.equal(h["edges"], torch.tensor([1.5, 2.0, 2.5]))
    assert torch.equal(h["counts"], torch.tensor([0.0, 3.0]))
    h = _histogram(torch.tensor([float("nan"), float("inf")]), 2)  # no finite value: [0, 1]
    assert torch.equal(h["edges"], torch.tensor([0.0, 0.5, 1.0]))
    h = _histogram(torch.tensor([float("nan"), 4.0, 6.0]), 2)  # the range of the finite ones
    assert torch.equal(h["edges"], torch.tensor([4.0, 5.0, 6.0]))
    assert _histogram(torch.tensor([0.5]), 3)["counts"].sum() == 1  # the default kind: other


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 3).double()
        self.act = nn.Tanh()
        self.b = nn.Linear(3, 1).double()
        self.unused = nn.Linear(2, 2).double()

    def forward(self, x):
        return self.b(self.act(self.a(x)))


def test_layer_gradient_norms_by_hand():
    torch.manual_seed(0)
    m = Two()
    x = torch.randn(4, 2, dtype=D)
    loss = m(x).pow(2).mean()
    got = layer_gradient_norms(m, loss)
    ga, gb = torch.autograd.grad(loss, [m.a.weight, m.b.weight], retain_graph=True)
    assert list(got) == ["a", "b", "unused"]
    assert got["a"] == float(ga.norm()) and got["b"] == float(gb.norm()) and got["unused"] == 0.0
    assert all(p.grad is None for p in m.parameters())  # .grad untouched
    loss.backward()  # the graph was retained
    only = layer_gradient_norms(m, m(x).sum(), layers=lambda n, mod: n == "b")
    assert list(only) == ["b"]
    with pytest.raises(ValueError) as err:
        layer_gradient_norms(m, m(x).sum(), layers=(nn.Conv2d,))
    assert str(err.value) == (
        "layers=(<class 'torch.nn.modules.conv.Conv2d'>,) is invalid: expected a selector "
        "matching at least one layer"
    )
    with pytest.raises(RuntimeError):  # without retain_graph the graph is freed
        loss2 = m(x).sum()
        layer_gradient_norms(m, loss2, retain_graph=False)
        loss2.backward()
    assert layer_gradient_norms(nn.Sequential(nn.Linear(2, 1)), torch.zeros(()).requires_grad_()) \
        == {"0": 0.0}  # fmt: skip


def stats_of(module, x, **kw):
    return activation_stats(nn.Sequential(module), x, **kw)["0"]


def test_activation_statistics_per_kind():
    x = torch.tensor([[-10.0, 0.0, 10.0], [-10.0, 1.0, 10.0]])
    s = stats_of(nn.Sigmoid(), x)
    a = torch.sigmoid(x)
    assert s["saturated"] == pytest.approx(4 / 6) and set(s) == {"mean", "std", "saturated"}
    assert s["mean"] == pytest.approx(float(a.mean())) and s["std"] == pytest.approx(
        float(a.std(correction=0)))  # fmt: skip
    assert stats_of(nn.Tanh(), x)["saturated"] == pytest.approx(4 / 6)
    assert stats_of(nn.Softsign(), x * 20)["saturated"] == pytest.approx(4 / 6)
    r = stats_of(nn.ReLU(), torch.tensor([[-1.0, 2.0, 0.0], [-3.0, -1.0, 0.0]]))
    assert r["dead"] == pytest.approx(2 / 3) and r["zero"] == pytest.approx(5 / 6)
    assert set(r) == {"mean", "std", "dead", "zero"}
    assert set(stats_of(nn.GELU(), x)) == {"mean", "std"}
    assert set(stats_of(nn.Identity(), x)) == {"mean", "std"}


def test_activation_stats_watches_layers_and_activations_in_forward_order():
    torch.manual_seed(1)
    m = Two()
    x = torch.randn(5, 2, dtype=D)
    s = activation_stats(m, x, bins=3)
    assert list(s) == ["a", "act", "b"]  # `unused` never runs: no entry
    with torch.no_grad():
        pre = m.a(x)
    assert s["a"]["mean"] == pytest.approx(float(pre.mean()))
    assert set(s["a"]) == {"mean", "std", "hist", "edges"}  # a layer: moments only
    assert set(s["act"]) == {"mean", "std", "saturated", "hist", "edges"}
    assert torch.equal(s["act"]["edges"], torch.linspace(-1.0, 1.0, 4))  # tanh's range
    assert isinstance(s["a"]["mean"], float) and s["a"]["hist"].shape == (3,)
    # a module selected as a layer is watched as a layer even if it is an activation
    s = activation_stats(m, x, layers=(nn.Tanh,))
    assert list(s) == ["act"] and "saturated" not in s["act"]


def test_bins_must_be_a_positive_int():
    for bins in (0, -1, 2.0):
        with pytest.raises(ValueError) as err:
            activation_stats(nn.Sequential(nn.Linear(2, 2)), torch.zeros(1, 2), bins=bins)
        assert str(err.value) == f"bins={bins} is invalid: expected a positive int or None"
    s = activation_stats(nn.Sequential(nn.Linear(2, 2)), torch.zeros(1, 2), bins=1)
    assert s["0"]["hist"].shape == (1,)


def test_saturation_is_strictly_beyond_the_thresholds():
    """sigmoid: a < 0.01 or a > 0.99; tanh and softsign: |a| > 0.99 (values at the thresholds
    are not saturated)."""
    at = torch.tensor([[0.01, 0.99, 0.5, 0.0099, 0.9901]])
    assert _activation_tensors(at, "sigmoid")["saturated"] == pytest.approx(2 / 5)
    at = torch.tensor([[0.99, -0.99, 0.0, 0.9901, -0.9901]])
    assert _activation_tensors(at, "tanh")["saturated"] == pytest.approx(2 / 5)


def test_selectors_one_type_a_predicate_and_a_bad_one():
    m = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    assert [n for n, _ in _select(m, nn.Linear)] == ["0", "2"]  # one type: as a 1-tuple
    assert [n for n, _ in _select(m, lambda n, mod: n == "2")] == ["2"]
    with pytest.raises(ValueError) as err:
        _select(m, "Linear")
    assert str(err.value) == (
        "layers='Linear' is invalid: expected a tuple of module types or a predicate"
    )


def test_an_activation_selected_as_a_layer_gets_the_data_range_histogram():
    """Watched as a layer, a tanh's histogram spans its outputs' range, not tanh's [-1, 1]."""
    m = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(3))
    s = activation_stats(m, x, layers=(nn.Tanh,), bins=3)
    with torch.no_grad():
        a = m(x)
    want = torch.linspace(float(a.min()), float(a.max()), 4)
    assert torch.equal(s["1"]["edges"], want) and set(s["1"]) == {"mean", "std", "hist", "edges"}
