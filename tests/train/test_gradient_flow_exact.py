"""Exact answers for the gradient-flow measurements on toy models whose gradients are known in
closed form, the documented edge cases (unused states, mixed activations, half precision) and
the warnings with their full messages.

Written for the mutation score of ``smithing.train.gradient_flow`` (issue 15).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from smithing.train.diagnostics import NonFiniteGradientWarning, VanishingGradientWarning
from smithing.train.gradient_flow import (
    _wide,
    gradient_flow,
    log_abs_histogram,
    signal_variances,
    time_lag_gradient_norms,
)
from warning_site import assert_points_at

D = torch.float64


class Toy(nn.Module):
    """States ``h_t = x`` (each its own node), prediction ``sum_t w_t h_t``: the loss's
    gradient with respect to ``h_t`` is ``w_t dL/dpred``, so ``||dL/dh_t|| = |w_t| c``."""

    def __init__(self, ws, task=None, classes=0):
        super().__init__()
        self.ws = ws
        if task is not None:
            self.task = task
        self.classes = classes

    def forward_with_states(self, x):
        states = [x.detach().clone().requires_grad_() for _ in self.ws]
        pred = sum(w * h for w, h in zip(self.ws, states) if w is not None)
        if self.classes:
            pred = pred[:, : self.classes]
        else:
            pred = pred.sum(-1)
        return pred, states


def test_wide_keeps_float64_and_widens_half_precisions():
    t = torch.ones(2, dtype=torch.float16, requires_grad=True)
    assert _wide(t).dtype == torch.float32 and not _wide(t).requires_grad
    assert _wide(torch.ones(2, dtype=torch.bfloat16)).dtype == torch.float32
    assert _wide(torch.ones(2, dtype=D)).dtype == D
    assert _wide(torch.ones(2)).dtype == torch.float32


def test_time_lag_norms_exact_with_the_default_losses():
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=D)
    y = torch.tensor([0.5, -0.5], dtype=D)
    ws = [0.5, None, -2.0, 1.0]  # step 2 is not used by the prediction: its norm is 0
    for task in (None, "regression"):
        m = Toy(ws, task)
        norms = time_lag_gradient_norms(m, x, y)
        pred = 0.5 * x.sum(-1) - 2.0 * x.sum(-1) + x.sum(-1)
        c = torch.linalg.vector_norm((2 * (pred - y) / 2)[:, None].expand(2, 2))  # dL/dpred
        want = torch.tensor([0.5, 0.0, 2.0, 1.0], dtype=D) * c
        torch.testing.assert_close(norms, want, rtol=1e-14, atol=0)
        assert not norms.requires_grad and norms.shape == (4,)
    # classification: cross-entropy of the logits (batch, 2)
    m = Toy([1.0, 3.0], "classification", classes=2)
    labels = torch.tensor([0, 1])
    norms = time_lag_gradient_norms(m, x, labels)
    logits = 4.0 * x
    c = torch.linalg.vector_norm((torch.softmax(logits, -1) - F.one_hot(labels, 2)) / 2)
    torch.testing.assert_close(norms, torch.tensor([1.0, 3.0], dtype=D) * c, rtol=1e-12, atol=0)
    # a custom loss
    norms = time_lag_gradient_norms(Toy([1.0, 2.0]), x, y, loss_fn=lambda p, t: (p - t).sum())
    torch.testing.assert_close(norms, torch.tensor([2.0, 4.0], dtype=D), rtol=1e-14, atol=0)


def test_time_lag_warnings_and_their_messages():
    x = torch.ones(1, 2, dtype=D)
    y = torch.zeros(1, dtype=D)

    def loss(p, t):
        return p.sum()  # dL/dh_t = w_t

    with pytest.warns(VanishingGradientWarning) as rec:
        time_lag_gradient_norms(Toy([1e-4, 1.0]), x, y, loss, warn=True)
    assert len(rec) == 1 and str(rec[0].message) == (
        "vanishing gradients through time: ||dL/dh_1|| / ||dL/dh_T|| = 0.0001 (threshold 0.001)"
    )
    assert_points_at(rec[0], __file__, "gradient_flow.py")  # stacklevel: the caller's line
    with pytest.warns(VanishingGradientWarning, match=r"= 0.0123 \(threshold 0.05\)"):
        time_lag_gradient_norms(Toy([0.0123, 1.0]), x, y, loss, warn=True, vanishing_ratio=0.05)
    # T = 3 with a zero middle norm: the ratio is first / last (5e-4), not first / middle
    # (inf) nor first * last (0.2, above the threshold)
    with pytest.warns(VanishingGradientWarning) as rec:
        time_lag_gradient_norms(Toy([0.01, 0.0, 20.0]), x, y, loss, warn=True)
    assert len(rec) == 1 and str(rec[0].message).endswith("= 0.0005 (threshold 0.001)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        time_lag_gradient_norms(Toy([1e-4, 1.0]), x, y, loss)  # warn=False
        time_lag_gradient_norms(Toy([1e-3, 1.0]), x, y, loss, warn=True)  # at the threshold
        time_lag_gradient_norms(Toy([0.0, 0.0]), x, y, loss, warn=True)  # nothing flows
        time_lag_gradient_norms(Toy([0.0123, 1.0]), x, y, loss, warn=True, vanishing_ratio=0.01)
    with pytest.warns(NonFiniteGradientWarning) as rec:
        time_lag_gradient_norms(Toy([1.0, math.inf, math.nan, 1e-9]), x, y, loss, warn=True)
    assert len(rec) == 1 and str(rec[0].message) == "non-finite dL/dh_t at steps [2, 3]"
    assert_points_at(rec[0], __file__, "gradient_flow.py")


# ---------------------------------------------------------------- signal_variances
class WithTuple(nn.Module):
    """A Linear, a tanh, a module returning a tuple (skipped by the hooks), a Linear."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 3).double()
        self.act = nn.Tanh()
        self.split = Pair()
        self.b = nn.Linear(3, 2).double()

    def forward(self, x):
        h = self.act(self.a(x))
        h, _ = self.split(h)
        return self.b(h)


class Pair(nn.Module):
    def forward(self, h):
        return h, h


def test_signal_variances_of_a_model_in_eval_mode_with_a_selector():
    torch.manual_seed(0)
    m = WithTuple().eval()
    x = torch.randn(6, 2, dtype=D)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    s = signal_variances(m, x, y, layers=lambda n, mod: n == "b")
    assert not m.training
    with torch.enable_grad():
        h = torch.tanh(m.a(x))
        z = m.b(h)
    delta = (torch.softmax(z, -1) - F.one_hot(y, 2)).detach()  # the summed cross-entropy's dL/dz
    assert len(s["z_grads"]) == 1
    torch.testing.assert_close(s["z_grads"][0], delta.detach(), rtol=1e-12, atol=1e-15)
    assert s["grad_var"] == [pytest.approx(float(delta.var()), rel=1e-12)]
    assert s["act_var"] == [pytest.approx(float(h.detach().var()), rel=1e-12)]
    with pytest.raises(ValueError) as info:
        signal_variances(m, x, y, layers=(nn.Conv1d,))
    assert str(info.value) == (
        "layers=(<class 'torch.nn.modules.conv.Conv1d'>,) is invalid: expected a selector "
        "matching at least one layer"
    )


def test_signal_variances_restore_the_mode_and_remove_hooks_after_an_error():
    torch.manual_seed(0)
    m = WithTuple().train()

    def bad_loss(out, y):
        raise RuntimeError("no loss")

    with pytest.raises(RuntimeError, match="no loss"):
        signal_variances(m, torch.randn(2, 2, dtype=D), torch.zeros(2), loss_fn=bad_loss)
    assert m.training and not any(mod._forward_hooks for mod in m.modules())


# ---------------------------------------------------------------- log_abs_histogram
def test_log_abs_histogram_edges_and_messages():
    g = torch.tensor([1e-3, 1e-1, 10.0], dtype=D)
    assert log_abs_histogram(g, np.array([-3.0, 0.0])) == [3.0]  # 10 is clipped into range
    assert log_abs_histogram(g, [-3.0, -1.0, 1.0]) == [1.0, 2.0]  # the last bin is closed
    for edges, shown in (([0.0], "[0.0]"), ([1.0, 1.0], "[1.0, 1.0]"),
                         ([[0.0, 1.0]], "[[0.0, 1.0]]"),
                         (list(range(10, 1, -1)), "'9 edges'")):  # fmt: skip
        with pytest.raises(ValueError) as info:
            log_abs_histogram(g, edges)
        assert str(info.value) == (
            f"edges={shown} is invalid: expected at least two increasing bin edges"
        )
    # eight edges are still shown
    with pytest.raises(ValueError, match=r"edges=\[8.0, 7.0"):
        log_abs_histogram(g, [float(v) for v in range(8, 0, -1)])
    half = torch.tensor([1e-3, 0.5], dtype=torch.float16)
    assert log_abs_histogram(half, [-4.0, -1.0, 1.0]) == [1.0, 1.0]


# ---------------------------------------------------------------- gradient_flow
def test_gradient_flow_with_mixed_activations_a_custom_loss_and_the_mode():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    m = m.double().train()
    x = torch.randn(5, 2, dtype=D)
    y = torch.tensor([0, 1, 1, 0, 1])
    d = gradient_flow(m, x, y, loss_fn=lambda out, t: F.cross_entropy(out, t, reduction="sum"))
    assert m.training and all(p.grad is None for p in m.parameters())
    loss = F.cross_entropy(m(x), y, reduction="sum")
    grads = torch.autograd.grad(loss, [m[0].weight, m[2].weight, m[4].weight])
    assert d["grad_norm"] == pytest.approx([float(g.norm()) for g in grads], rel=1e-6)
    # tanh has "saturated", relu has "zero": neither is in every layer, so neither is given
    assert set(d) == {"grad_norm", "act_mean", "act_std"}
    assert len(d["act_mean"]) == len(d["act_std"]) == 2
    plain = nn.Sequential(nn.Linear(2, 2)).double()
    d = gradient_flow(plain, x, y, bins=3)
    assert set(d) == {"grad_norm", "act_mean", "act_std", "act_hist"} and d["act_hist"] == []
    assert d["act_mean"] == [] and len(d["grad_norm"]) == 1
