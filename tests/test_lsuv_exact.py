"""LSUV (Mishkin & Matas 2016, Algorithm 1) against a float64 transcription, and its edges:
defaults, the layers it selects, the gain of its pre-initialization, every message.

Written for the mutation score of ``smithing.init.lsuv`` (issue 15).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from smithing import init
from tensortools import gen

D = torch.float64


def _net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4)).to(D)
    with torch.no_grad():  # biases that differ across units: Var(B) over batch and units
        # then keeps a part no rescaling of W removes, so each rescaling only nears Var = 1
        # (a constant bias would shift B without changing its variance: one step would do)
        net[0].bias.copy_(torch.linspace(-0.6, 0.6, 5, dtype=D))
        net[2].bias.copy_(torch.linspace(0.3, -0.5, 4, dtype=D))
    return net


def _x():
    return torch.randn(32, 6, generator=gen(1), dtype=D) * 3.0


def _lsuv_by_hand(net, x, *, tol, max_iter, seed=0):
    """Algorithm 1, transcribed: orthogonal pre-init of each Linear in order (one generator),
    then for each layer in forward order at most max_iter rescalings W <- W / sqrt(Var(B))."""
    g = gen(seed)
    linears = [i for i, m in enumerate(net) if isinstance(m, nn.Linear)]
    for i in linears:
        init.initialize(net[i].weight.data, "orthogonal", generator=g)
    variances = {}

    def pre(i):
        h = x
        for j in range(i):
            h = net[j](h)
        return net[i](h)

    with torch.no_grad():
        for i in linears:
            v = float(pre(i).float().var())
            for _ in range(max_iter):
                if abs(v - 1.0) < tol:
                    break
                net[i].weight.div_(math.sqrt(v))
                v = float(pre(i).float().var())
            variances[str(i)] = v
    return variances


@pytest.mark.parametrize(("tol", "max_iter"), [(0.1, 10), (1e-12, 10), (1e-12, 1), (0.3, 3)])
def test_lsuv_equals_algorithm_1_transcribed(tol, max_iter):
    x = _x()
    ours, ref = _net(), _net()
    kw = {} if (tol, max_iter) == (0.1, 10) else {"tol": tol, "max_iter": max_iter}
    got = init.lsuv(ours, x, generator=gen(0), bias="keep", **kw)  # first row: the defaults
    want = _lsuv_by_hand(ref, x, tol=tol, max_iter=max_iter)
    assert got == want
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_at_most_t_max_10_rescalings_by_default():
    x = _x()
    ours, ref = _net(), _net()
    got = init.lsuv(ours, x, generator=gen(0), bias="keep", tol=1e-12)  # max_iter: default
    assert got == _lsuv_by_hand(ref, x, tol=1e-12, max_iter=10)
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), ref.parameters()))


def test_the_model_rule_has_the_papers_defaults_too():
    x = _x()
    ours, ref = _net(), _net()
    init.apply(ours, "lsuv", data=x, generator=gen(0), bias="keep", tol=1e-12)
    _lsuv_by_hand(ref, x, tol=1e-12, max_iter=10)  # T_max = 10 rescalings at most
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), ref.parameters()))


def test_biases_default_to_zero_and_follow_the_policy():
    x = _x()
    net = _net()
    init.lsuv(net, x, generator=gen(0))
    assert torch.equal(net[0].bias, torch.zeros(5, dtype=D))
    assert torch.equal(net[2].bias, torch.zeros(4, dtype=D))
    net = _net()
    init.apply(net, "lsuv", data=x, generator=gen(0))
    assert torch.equal(net[2].bias, torch.zeros(4, dtype=D))
    net = _net()
    init.lsuv(net, x, generator=gen(0), bias=0.25)
    assert torch.equal(net[0].bias, torch.full((5,), 0.25, dtype=D))


def test_layers_selects_what_is_initialized():
    x = _x()
    net = _net()
    before = net[2].weight.detach().clone()
    v = init.lsuv(net, x, generator=gen(0), layers=lambda name, m: name == "0")
    assert list(v) == ["0"] and torch.equal(net[2].weight, before)


def test_the_pre_init_gain_and_activation_reach_the_rule():
    # with a tolerance nothing fails, no layer is rescaled: the weights are the pre-init's
    x = _x()
    net = _net()
    init.apply(net, "lsuv", data=x, generator=gen(0), gain="auto", activation="tanh", tol=1e9)
    g = gen(0)
    for i in (0, 2):
        ref = init.initialize(torch.empty(net[i].weight.shape, dtype=D), "orthogonal",
                              generator=g, gain=5.0 / 3.0)  # fmt: skip
        assert torch.equal(net[i].weight, ref)


def test_two_examples_are_enough_and_one_iteration_is_allowed():
    net = nn.Linear(3, 2).to(D)
    v = init.lsuv(net, torch.randn(2, 3, generator=gen(2), dtype=D), generator=gen(0),
                  max_iter=1)  # fmt: skip
    assert list(v) == [""]


BATCH = "is invalid: expected a tensor batch of at least 2 examples"
BAD = [
    ({"data": torch.ones(1, 6)}, f"data='Tensor' {BATCH}"),
    ({"data": [[1.0] * 6] * 4}, f"data='list' {BATCH}"),
    ({"tol": 0.0}, "tol=0.0 is invalid: expected a positive tolerance"),
    ({"max_iter": 0}, "max_iter=0 is invalid: expected a positive int"),
    ({"max_iter": "2"}, "max_iter='2' is invalid: expected a positive int"),
    ({"max_iter": 2.0}, "max_iter=2.0 is invalid: expected a positive int"),
]  # fmt: skip


@pytest.mark.parametrize(("kw", "message"), BAD)
def test_invalid_inputs_have_their_full_message(kw, message):
    kw = {"data": _x(), **kw}
    with pytest.raises(ValueError) as info:
        init.lsuv(_net(), kw.pop("data"), generator=gen(0), **kw)
    assert str(info.value) == message


def test_the_model_rule_needs_data():
    with pytest.raises(ValueError) as info:
        init.apply(_net(), "lsuv")
    assert str(info.value) == (
        "data=None is invalid: expected a batch of inputs (lsuv is data-dependent:"
        " apply(model, 'lsuv', data=x))"
    )


def test_a_layer_the_forward_never_calls_is_refused():
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(6, 3), nn.Linear(3, 3)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(ValueError) as info:
        init.lsuv(Skips().to(D), _x(), generator=gen(0))
    assert str(info.value) == (
        "layers=['unused'] are never called by the forward pass; lsuv needs every selected "
        "layer to run on data"
    )


def test_a_layer_with_zero_output_variance_is_refused():
    net = _net()
    net[1].eval()  # mixed train/eval flags, restored as they were even on an error
    with pytest.raises(ValueError) as info:
        init.lsuv(net, torch.zeros(8, 6, dtype=D), generator=gen(0))  # zero data, zero bias
    assert str(info.value) == (
        "lsuv: layer '0' has output variance 0.0 on data; it cannot be rescaled to 1"
    )
    assert [m.training for m in net.modules()] == [True, True, False, True]
