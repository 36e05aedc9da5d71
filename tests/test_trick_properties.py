"""Defining properties of tricks that no other test pinned, each checked so that breaking the
property fails; ``tests/break_tricks.py`` holds the one-line breaks verified to fail here.
"""

from __future__ import annotations

import pytest
import torch

from smithing.nn.dropout import Dropout

D = torch.float64


@pytest.mark.parametrize("mode", ["inverted", "lecture"])
def test_dropout_drops_a_fraction_p(mode):
    """Dropout (Srivastava et al. 2014): each unit is dropped with probability p (ours; the
    paper's p is the retain probability 1 - p), a kept unit is passed as x / (1 - p)
    (inverted) or x (lecture). With p = 0.2 on 200k units the dropped fraction is 0.2 within
    5 standard errors, and every kept value is exact."""
    x = torch.full((400, 500), 3.0, dtype=D)
    layer = Dropout(0.2, mode=mode).train()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        y = layer(x)
    dropped = (y == 0).double().mean().item()
    se = (0.2 * 0.8 / x.numel()) ** 0.5
    assert abs(dropped - 0.2) < 5 * se
    kept = y[y != 0]
    want = 3.0 / 0.8 if mode == "inverted" else 3.0
    assert torch.equal(kept, torch.full_like(kept, want))


def test_gaussian_dropout_noise_has_variance_p_over_1_minus_p():
    """Gaussian dropout (Srivastava et al. 2014, Sec. 10): y = x r, r ~ N(1, p / (1 - p)), the
    mean and variance of the inverted Bernoulli mask m / (1 - p); p = 0.3 gives Var r = 3/7
    (checked within 3 % on 200k draws; the variance p alone, 0.3, is 30 % off)."""
    x = torch.ones(400, 500, dtype=D)
    layer = Dropout(0.3, mode="gaussian").train()
    with torch.random.fork_rng():
        torch.manual_seed(1)
        r = layer(x)
    assert abs(r.mean().item() - 1.0) < 5 * (3 / 7 / x.numel()) ** 0.5
    assert r.var().item() == pytest.approx(3 / 7, rel=0.03)
    assert torch.equal(layer.eval()(x), x)  # inference: y = x


def test_ais_log_weights_match_a_transcription_of_neal_and_salakhutdinov():
    """AIS (Neal 2001; Salakhutdinov & Murray 2008): v_1 ~ p_A (the base-rate model), then for
    beta_1 < ... < beta_K: log w += log f_beta_k(v_k) - log f_beta_{k-1}(v_k) and v_k -> v_{k+1}
    by one Gibbs sweep at beta_k; log Z = log mean(w) + log Z_A. A float64 transcription with
    the same draws, 4 runs, betas (0, 0.25, 0.6, 1): equal weights, not merely a close log Z
    (the error-bar test cannot see a transition at the wrong temperature)."""
    from smithing.pretrain import ais_log_z
    from smithing.pretrain.rbm import BernoulliRBM

    gp = torch.Generator().manual_seed(0)
    rbm = BernoulliRBM(5, 3, dtype=D)
    W, b = torch.randn(5, 3, generator=gp, dtype=D), torch.randn(5, generator=gp, dtype=D)
    c = torch.randn(3, generator=gp, dtype=D)
    with torch.no_grad():
        rbm.W.copy_(W), rbm.b.copy_(b), rbm.c.copy_(c)
    bA = 0.5 * torch.randn(5, generator=gp, dtype=D)
    betas = torch.tensor([0.0, 0.25, 0.6, 1.0], dtype=D)
    res = ais_log_z(rbm, n_runs=4, betas=betas, base_biases=bA,
                    generator=torch.Generator().manual_seed(1))  # fmt: skip

    def log_f(beta, v):  # (1 - beta) b_A'v + beta b'v + sum_j log(1 + exp(beta (c + v'W)_j))
        hid = torch.log1p(torch.exp(beta * (c + v @ W))).sum(-1)
        return (1 - beta) * (v @ bA) + beta * (v @ b) + hid

    g = torch.Generator().manual_seed(1)
    v = torch.bernoulli(torch.sigmoid(bA).expand(4, 5), generator=g)  # v_1 ~ p_A
    logw = torch.zeros(4, dtype=D)
    bs = betas.tolist()
    for prev, beta in zip(bs[:-2], bs[1:-1]):
        logw += log_f(beta, v) - log_f(prev, v)
        h = torch.bernoulli(torch.sigmoid(beta * (c + v @ W)), generator=g)
        v = torch.bernoulli(torch.sigmoid((1 - beta) * bA + beta * (b + h @ W.T)), generator=g)
    logw += log_f(1.0, v) - log_f(bs[-2], v)
    torch.testing.assert_close(res.log_weights, logw, rtol=1e-12, atol=1e-12)
    log_za = torch.log1p(torch.exp(bA)).sum() + 3 * torch.log(torch.tensor(2.0, dtype=D))
    want = torch.logsumexp(logw, 0) - torch.log(torch.tensor(4.0, dtype=D)) + log_za
    torch.testing.assert_close(res.log_z, want, rtol=1e-12, atol=1e-12)


def test_clipping_by_norm_and_by_value_match_their_formulas():
    """Gradient clipping (Pascanu, Mikolov & Bengio 2013) from the formulas, not from torch's
    own clip functions (which ours call): by norm, every gradient times
    min(1, c / (||g|| + 1e-6)) with ||g|| the 2-norm of ALL gradients concatenated (so the
    direction is kept); by value, each element clamped to [-c, c]."""
    from smithing.train import clip_grad_norm, clip_grad_value

    g = torch.Generator().manual_seed(0)
    params = [torch.zeros(s, dtype=D, requires_grad=True) for s in ((3, 4), (4,), (2, 3))]
    grads = [3 * torch.randn(p.shape, generator=g, dtype=D) for p in params]
    total = torch.cat([gr.flatten() for gr in grads]).square().sum().sqrt()
    for c in (0.7, 1e3):
        for p, gr in zip(params, grads):
            p.grad = gr.clone()
        report = clip_grad_norm(params, c)
        scale = min(1.0, c / (float(total) + 1e-6))
        for p, gr in zip(params, grads):
            torch.testing.assert_close(p.grad, gr * scale, rtol=1e-12, atol=0)
        assert report.total_norm == pytest.approx(float(total), rel=1e-12)
        assert report.clipped == (scale < 1)
    for p, gr in zip(params, grads):
        p.grad = gr.clone()
    clip_grad_value(params, 0.5)
    for p, gr in zip(params, grads):
        want = torch.where(gr > 0.5, 0.5, torch.where(gr < -0.5, -0.5, gr))
        assert torch.equal(p.grad, want)


def test_proximal_l1_step_is_a_soft_threshold_by_lr_times_lambda_over_n():
    """Proximal L1 (ISTA; Tsuruoka et al. 2009's clipping form): after the gradient step of the
    smooth loss, w <- sgn(w) max(|w| - lr lam / n, 0). At lr = 0.1 (not 1, where a threshold
    forgetting lr looks the same) one step equals soft(w - lr grad, lr lam / n), and the
    weights inside the threshold become exact zeros."""
    from torch import nn

    from smithing.regularize import Penalty

    a = torch.tensor([[1.0, -0.02, 0.3, -0.5, 0.01]], dtype=D)
    lam, n, lr = 2.0, 5, 0.1
    lin = nn.Linear(5, 1, bias=False).to(D)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.5, 0.03, -0.2, 0.9, -0.01]], dtype=D))
    w0 = lin.weight.detach().clone()
    pen = Penalty(l1=lam, n=n, proximal=True)
    opt = torch.optim.SGD(lin.parameters(), lr=lr)
    opt.zero_grad()
    (0.5 * ((lin.weight - a) ** 2).sum() + pen.penalty(lin.named_parameters())).backward()
    pen.step(opt, lin.named_parameters(), lr)
    z = w0 - lr * (w0 - a)  # the gradient step of 1/2 ||w - a||^2
    want = torch.sign(z) * (z.abs() - lr * lam / n).clamp(min=0)
    torch.testing.assert_close(lin.weight.detach(), want, rtol=0, atol=1e-15)
    assert int((lin.weight == 0).sum()) == 2
