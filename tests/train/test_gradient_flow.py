"""smithing.train.gradient_flow: signal variances, per-layer gradient flow, log histograms and
time-lag gradient norms against hand computations in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from smithing.nn import MLP
from smithing.nn.rnn import RNNClassifier, RNNRegressor
from smithing.train import (
    gradient_flow,
    hidden_activations,
    log_abs_histogram,
    signal_variances,
    time_lag_gradient_norms,
)
from smithing.train.diagnostics import NonFiniteGradientWarning, VanishingGradientWarning
from tensortools import gen

D = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny recurrent steps only lose from intra-op threads (badly on a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _mlp(activation="tanh", hidden=(4, 3), seed=0, dtype=D):
    torch.manual_seed(seed)
    return MLP(5, list(hidden), 3, activation).to(dtype)


def _batch(n=7, seed=1, dtype=D):
    g = gen(seed)
    return torch.randn(n, 5, generator=g, dtype=dtype), torch.randint(0, 3, (n,), generator=g)


def _by_hand(model, x, activation):
    """Pre-activations z_l and activations h_l of an MLP, layer by layer (float64)."""
    f = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[activation]
    zs, hs, h = [], [], x
    lins = model.linears
    for i, lin in enumerate(lins):
        z = h @ lin.weight.T + lin.bias  # z_l = W_l h_{l-1} + b_l
        zs.append(z)
        if i < len(lins) - 1:
            h = f(z)  # h_l = f(z_l)
            hs.append(h)
    return zs, hs


# ----------------------------------------------------------------------------- signal_variances


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_signal_variances_equal_a_hand_backward_pass(activation):
    model = _mlp(activation)
    x, y = _batch()
    s = signal_variances(model, x, y)
    zs, hs = _by_hand(model, x, activation)
    with torch.no_grad():
        # dL/dz_out for the summed cross-entropy: softmax(z) - onehot(y), per example
        delta = torch.softmax(zs[-1], -1) - F.one_hot(y, 3).to(D)
        want = [delta]
        for i in range(len(zs) - 2, -1, -1):
            back = delta @ model.linears[i + 1].weight  # W_{l+1}^T dL/dz_{l+1}
            if activation == "tanh":
                fp = 1 - hs[i] ** 2
            elif activation == "relu":
                fp = (zs[i] > 0).to(D)
            else:
                fp = hs[i] * (1 - hs[i])
            delta = fp * back  # dL/dz_l = f'(z_l) * (W_{l+1}^T dL/dz_{l+1})
            want.insert(0, delta)
    assert len(s["z_grads"]) == len(zs) == 3
    for got, exp in zip(s["z_grads"], want, strict=True):
        torch.testing.assert_close(got, exp, rtol=1e-12, atol=1e-14)
    assert s["grad_var"] == pytest.approx([float(g.var()) for g in want], rel=1e-10)
    assert s["act_var"] == pytest.approx([float(h.detach().var()) for h in hs], rel=1e-10)


def test_signal_variances_leave_grads_and_mode_alone():
    model = _mlp("tanh")
    model.train()
    x, y = _batch()
    s = signal_variances(model, x, y, loss_fn=lambda out, t: F.cross_entropy(out, t) * len(t))
    ref = signal_variances(model, x, y)
    for a, b in zip(s["z_grads"], ref["z_grads"], strict=True):
        torch.testing.assert_close(a, b)  # the mean times n is the sum
    assert model.training and all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())  # hooks removed
    with pytest.raises(ValueError, match="layers=.* is invalid"):
        signal_variances(model, x, y, layers=(nn.Conv2d,))


def test_hidden_activations_of_an_mlp():
    model = _mlp("relu", hidden=(4, 4, 2))
    names = [n for n, _ in hidden_activations(model)]
    assert names == ["net.2", "net.4", "net.6"]
    assert all(isinstance(m, nn.ReLU) for _, m in hidden_activations(model))


# ----------------------------------------------------------------------------- gradient_flow


@pytest.mark.parametrize(
    "activation,key", [("tanh", "saturated"), ("sigmoid", "saturated"), ("relu", "zero")]
)
def test_gradient_flow_equals_autograd_and_hand_statistics(activation, key):
    model = _mlp(activation)
    x, y = _batch(n=9)
    d = gradient_flow(model, x, y)
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, [lin.weight for lin in model.linears])
    assert d["grad_norm"] == pytest.approx([float(g.norm()) for g in grads], rel=1e-6)
    _, hs = _by_hand(model, x, activation)
    hs = [h.detach().float() for h in hs]  # activation_stats measures in float32
    assert d["act_mean"] == pytest.approx([float(h.mean()) for h in hs], abs=1e-6)
    assert d["act_std"] == pytest.approx([float(h.std(correction=0)) for h in hs], abs=1e-6)
    if key == "zero":
        want = [float((h <= 0).float().mean()) for h in hs]
        assert "saturated" not in d
    elif activation == "sigmoid":
        want = [float(((h < 0.01) | (h > 0.99)).float().mean()) for h in hs]
        assert "zero" not in d
    else:
        want = [float((h.abs() > 0.99).float().mean()) for h in hs]
    assert d[key] == pytest.approx(want)
    assert not {"act_hist", "log_grad_hist", "grad_zero"} & set(d)


def test_gradient_flow_histograms():
    model = _mlp("relu", hidden=(6, 6))
    x, y = _batch(n=20)
    edges = np.linspace(-8.0, 2.0, 21)
    d = gradient_flow(model, x, y, bins=10, log_grad_edges=edges)
    assert len(d["act_hist"]) == 2
    for hist in d["act_hist"]:
        assert len(hist["counts"]) == 10 and len(hist["edges"]) == 11
        assert sum(hist["counts"]) == 20 * 6  # every value in range [min, max]
    zg = signal_variances(model, x, y)["z_grads"]
    assert len(d["log_grad_hist"]) == 3
    for counts, g, zero in zip(d["log_grad_hist"], zg, d["grad_zero"], strict=True):
        assert counts == log_abs_histogram(g, edges)
        assert zero == pytest.approx(float((g == 0).double().mean()))
        assert sum(counts) == int((g != 0).sum())  # the non-zero ones, all finite


# ----------------------------------------------------------------------------- log_abs_histogram


def test_log_abs_histogram_counts_decades_and_clips():
    g = torch.tensor([1e-3, -1e-3, 2e-2, 0.5, -7.0, 0.0, math.inf, math.nan, 1e-30, 1e30])
    edges = [-4.0, -2.0, 0.0, 2.0]
    counts = log_abs_histogram(g, edges)
    # |g| in decades: 1e-3 x2 -> [-4, -2); 2e-2, 0.5 -> [-2, 0); 7 -> [0, 2];
    # 1e-30 clipped into the first bin, 1e30 into the last; 0, inf, nan left out
    assert counts == [3.0, 2.0, 2.0]
    assert log_abs_histogram(torch.zeros(4), edges) == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="edges=.* is invalid: expected at least two increasing"):
        log_abs_histogram(g, [1.0, 0.0])


# ----------------------------------------------------------------------------- time lags


@pytest.mark.parametrize("activation,init", [("tanh", "gaussian"), ("relu", "identity")])
def test_time_lag_gradient_norms_match_autograd_and_bptt(activation, init):
    torch.manual_seed(0)
    m = RNNRegressor(
        2, 5, activation=activation, init=init, input_std=0.5, generator=gen(3)
    ).double()
    with torch.no_grad():
        m.rnn.bias.copy_(torch.linspace(-0.2, 0.3, 5))  # relu units partly active
    x = torch.rand(3, 6, 2, generator=gen(4), dtype=torch.float64)
    y = torch.rand(3, generator=gen(5), dtype=torch.float64)
    norms = time_lag_gradient_norms(m, x, y)
    assert norms.shape == (6,)
    assert all(p.grad is None for p in m.parameters())  # .grad untouched
    # each dL/dh_t on its own, by autograd
    for t in range(6):
        pred, states = m.forward_with_states(x)
        (g,) = torch.autograd.grad(F.mse_loss(pred, y), states[t])
        torch.testing.assert_close(norms[t], torch.linalg.vector_norm(g), rtol=1e-12, atol=0)
    # BPTT by hand: dL/dh_T = w_out * 2 (pred - y) / n; dL/dh_{t-1} = W^T (f'(a_t) * dL/dh_t)
    w_ih, w_hh, b = m.rnn.weight_ih, m.rnn.weight_hh, m.rnn.bias
    h, hs, pre = torch.zeros(3, 5, dtype=torch.float64), [], []
    with torch.no_grad():
        for t in range(6):
            a = x[:, t] @ w_ih.T + h @ w_hh.T + b
            h = torch.tanh(a) if activation == "tanh" else torch.relu(a)
            pre.append(a)
            hs.append(h)
        pred = m.readout(h).squeeze(-1)
        delta = (2 * (pred - y) / 3)[:, None] * m.readout.weight  # (3, 5)
        manual = [None] * 6
        for t in range(5, -1, -1):
            manual[t] = torch.linalg.vector_norm(delta)
            fp = 1 - torch.tanh(pre[t]) ** 2 if activation == "tanh" else (pre[t] > 0).double()
            delta = (fp * delta) @ w_hh  # dL/dh_{t-1} = W^T (f'(a_t) * dL/dh_t)
    torch.testing.assert_close(norms, torch.stack(manual), rtol=1e-10, atol=1e-14)


def test_time_lag_norms_show_vanishing_and_identity_keeps_them():
    x = torch.rand(16, 60, 2, generator=gen(1))
    y = torch.rand(16, generator=gen(2))
    van = RNNRegressor(2, 32, activation="tanh", init="gaussian", scale=0.5, generator=gen(3))
    n = time_lag_gradient_norms(van, x, y)
    assert n[0] / n[-1] < 1e-6
    with pytest.warns(VanishingGradientWarning, match="vanishing gradients through time"):
        time_lag_gradient_norms(van, x, y, warn=True)
    irnn = RNNRegressor(2, 32, activation="relu", init="identity", generator=gen(3))
    n = time_lag_gradient_norms(irnn, x, y)
    assert 0.5 < n[0] / n[-1] <= 1.0 + 1e-6
    clf = RNNClassifier(2, 8, 3, generator=gen(0))
    assert time_lag_gradient_norms(clf, x, torch.zeros(16, dtype=torch.long)).shape == (60,)


def test_time_lag_norms_warn_on_non_finite_values():
    m = RNNRegressor(2, 4, activation="relu", init="identity", generator=gen(0))
    x = torch.rand(2, 5, 2, generator=gen(1))
    y = torch.tensor([math.inf, 0.0])
    with pytest.warns(NonFiniteGradientWarning, match="non-finite dL/dh_t at steps"):
        norms = time_lag_gradient_norms(m, x, y, warn=True)
    assert not torch.isfinite(norms).all()
