"""LSUV (Mishkin & Matas 2016) on DropConnect MLPs: each layer's *pre-activation* gets unit
variance (the layer's mean pre-activation E_M[u] = (1 - p)(W v + b), masks off), deterministically;
a plain MLP's LSUV is Algorithm 1 as before."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from smithing import init
from smithing.nn import MLP
from smithing.nn.mlp import DropConnectHidden
from tensortools import gen


def _batch():
    return torch.randn(256, 30, generator=gen(3)) * 3.0  # (256, 30), far from unit variance


def _preactivations(model, x):
    """Each affine layer's pre-activation on ``x``, by hand: a DropConnect layer's mean
    pre-activation mu = (1 - p)(W v + b) (Wan et al. 2013, the mean weights; the bias is
    dropped too), then v <- a(mu) for the next layer; a plain layer's W v + b."""
    outs, v = [], x
    act = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[model.activation]
    for i, lin in enumerate(model.linears):
        if isinstance(lin, DropConnectHidden):
            keep = 1.0 - lin.p
            u = keep * (v @ lin.weight.T) + (keep * lin.bias if lin.drop_bias else lin.bias)
        else:
            u = v @ lin.weight.T + lin.bias  # (batch, out)
        outs.append(u)
        if i < len(model.linears) - 1:
            v = act(u)
    return outs


@pytest.mark.parametrize("drop_bias", [True, False])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_lsuv_gives_each_dropconnect_preactivation_unit_variance(activation, drop_bias):
    torch.manual_seed(0)
    model = MLP(
        30,
        (64, 64, 64),
        10,
        activation,
        dropconnect=0.5,
        dropconnect_options={"drop_bias": drop_bias},
    )
    assert sum(isinstance(m, DropConnectHidden) for m in model.linears) == 3
    x = _batch()
    model.train()
    rng = torch.get_rng_state()
    v = init.lsuv(model, x, generator=gen(), tol=1e-3)
    assert torch.equal(torch.get_rng_state(), rng)  # no mask or inference sample drawn
    assert model.training  # flags restored
    with torch.no_grad():
        for name, u in zip(v, _preactivations(model, x), strict=True):
            assert u.var().item() == pytest.approx(1.0, abs=1e-3), name
            assert v[name] == pytest.approx(u.var().item(), rel=1e-4)


def test_lsuv_on_dropconnect_is_deterministic():
    x = _batch()
    weights = []
    for k in range(2):
        torch.manual_seed(0)
        model = MLP(30, (40, 40), 10, "tanh", dropconnect=0.3)
        torch.manual_seed(123 + k)  # a different global state each time must not matter
        init.apply(model, "lsuv", data=x, generator=gen(5))
        weights.append([lin.weight.clone() for lin in model.linears])
    for a, b in zip(*weights, strict=True):
        assert torch.equal(a, b)


def test_dropconnect_layer_works_as_before_after_lsuv():
    torch.manual_seed(0)
    model = MLP(30, (40,), 10, "tanh", dropconnect=0.5)
    init.apply(model, "lsuv", data=_batch(), generator=gen())
    layer = model.linears[0]
    x = _batch()[:8]
    model.eval()
    torch.manual_seed(1)
    a = layer(x)
    torch.manual_seed(1)
    b = layer.forward_inference(x)
    assert torch.equal(a, b)  # the Gaussian inference again, not the LSUV's deterministic pass
    model.train()
    torch.manual_seed(2)
    c = layer(x)
    torch.manual_seed(2)
    assert torch.equal(c, torch.tanh(layer.preactivation_train(x)))


def _lsuv_algorithm_1(model, x, generator, tol=0.1, max_iter=10):
    """Mishkin & Matas 2016, Algorithm 1, transcribed for a plain MLP: orthogonal pre-init
    (gain 1, zero bias), then each Linear's W <- W / sqrt(Var(W h + b)) until |Var - 1| < tol."""
    lins = model.linears
    for lin in lins:
        init.initialize(lin.weight, "orthogonal", generator=generator)
        nn.init.zeros_(lin.bias)
    h = x
    with torch.no_grad():
        for m in model.net:
            if isinstance(m, nn.Linear):
                for _ in range(max_iter):
                    v = float(m(h).var())
                    if abs(v - 1.0) < tol:
                        break
                    m.weight.div_(math.sqrt(v))
            h = m(h)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_plain_mlp_lsuv_is_algorithm_1(activation):
    torch.manual_seed(0)
    model = MLP(30, (64, 64), 10, activation)
    ref = MLP(30, (64, 64), 10, activation)
    x = _batch()
    init.apply(model, "lsuv", data=x, generator=gen(9))
    _lsuv_algorithm_1(ref, x, gen(9))
    for a, b in zip(model.linears, ref.linears, strict=True):
        torch.testing.assert_close(a.weight, b.weight, rtol=1e-6, atol=0)
        assert torch.equal(a.bias, b.bias)
