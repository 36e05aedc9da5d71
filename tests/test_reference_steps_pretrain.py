"""Step-for-step float64 references for the pretraining trainers.

Each test runs a trainer for a few steps and compares its parameters with a hand transcription
of the paper's update in float64, written here from the formulas (energies, objectives,
Gibbs sweeps) and NOT by calling the library's gradient functions; the transcription takes the
same random draws, in the trainer's documented order, from generators seeded alike.
``tests/break_tricks.py`` records which one-line breaks of the trainers these tests catch.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from smithing.pretrain.autoencoder import DenoisingAutoencoder, train_autoencoder
from smithing.pretrain.hybrid import ClassRBM, train_class_rbm
from smithing.pretrain.rbm import GaussianBernoulliRBM, train_rbm

D = torch.float64
TOL = {"rtol": 1e-10, "atol": 1e-12}


# ------------------------------------------------------------------ classification RBM


def _categorical(p, g):
    """One-hot draws from the rows of ``p`` by inverting the CDF with one uniform per row."""
    u = torch.rand(p[..., :1].shape, generator=g, dtype=p.dtype)
    idx = (p.cumsum(-1) < u * p.sum(-1, keepdim=True)).sum(-1).clamp_max(p.shape[-1] - 1)
    return F.one_hot(idx, p.shape[-1]).to(p.dtype)


def _stats(x, y, h):
    """Batch means of -dE/dtheta for E(y, x, h) = -h'Wx - b'x - c'h - d'e_y - h'U e_y."""
    n = x.shape[0]
    return {"W": x.T @ h / n, "b": x.mean(0), "c": h.mean(0), "U": y.T @ h / n, "d": y.mean(0)}


def _hid(x, y, P):
    return torch.sigmoid(x @ P["W"] + y @ P["U"] + P["c"])  # p(h = 1 | x, y)


def _gibbs(x, y, P, k, g):
    """k block-Gibbs sweeps (x, y) -> h -> (x', y'); returns the last sampled (x, y)."""
    for _ in range(k):
        h = torch.bernoulli(_hid(x, y, P), generator=g)
        x = torch.bernoulli(torch.sigmoid(h @ P["W"].T + P["b"]), generator=g)
        y = _categorical(torch.softmax(h @ P["U"].T + P["d"], -1), g)
    return x, y


def _class_rbm_reference(P, x, y, xu, *, objective, alpha, beta, lr, mu, wd, k, positive,
                         bs, ubs, steps, seed):  # fmt: skip
    """Larochelle & Bengio (2008): ``steps`` updates of theta += delta, delta <- mu delta + lr g,
    g = w_d grad log p(y|x) + w_g grad log p(x, y) [CD-k] + beta grad log p(x_u) [CD-k]
    - wd (W, U); batches from streams of random permutations (the trainer's documented order)."""
    P = {n: t.clone() for n, t in P.items()}
    g = torch.Generator().manual_seed(seed)
    order = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=g)))
    bufs = {"lab": torch.empty(0, dtype=torch.long), "unl": torch.empty(0, dtype=torch.long)}

    def take(name, n, size):
        while bufs[name].numel() < size:
            bufs[name] = torch.cat([bufs[name], torch.randperm(n, generator=order)])
        out, bufs[name] = bufs[name][:size], bufs[name][size:]
        return out

    C = P["d"].shape[0]
    delta = {n: torch.zeros_like(t) for n, t in P.items()}
    w_disc, w_gen = {"generative": (0.0, 1.0), "discriminative": (1.0, 0.0),
                     "hybrid": (1.0, alpha)}[objective]  # fmt: skip
    for _ in range(steps):
        ib = take("lab", x.shape[0], bs)
        iu = None if xu is None else take("unl", xu.shape[0], ubs)
        xb, yb = x[ib], F.one_hot(y[ib], C).to(D)
        # discriminative: autograd of log p(y|x), p(y|x) ~ exp(d_y + sum_j softplus(o_yj)) (eq. 2)
        Q = {n: t.clone().requires_grad_(True) for n, t in P.items()}
        o = (xb @ Q["W"])[:, None, :] + Q["U"][None] + Q["c"]  # (B, C, H)
        logp = torch.log_softmax(Q["d"] + F.softplus(o).sum(-1), -1)
        ll = (logp * yb).sum(-1).mean()
        grads = torch.autograd.grad(ll, [Q[n] for n in P], allow_unused=True)
        grad = {n: w_disc * (torch.zeros_like(P[n]) if gr is None else gr)
                for n, gr in zip(P, grads)}  # fmt: skip
        if objective != "discriminative":  # CD-k on log p(x, y)
            ph0 = _hid(xb, yb, P)
            xn, yn = _gibbs(xb, yb, P, k, g)
            pos, neg = _stats(xb, yb, ph0), _stats(xn, yn, _hid(xn, yn, P))
            grad = {n: grad[n] + w_gen * (pos[n] - neg[n]) for n in P}
        if xu is not None:  # + beta grad log p(x_u): positive y ~ p(y | x_u), CD-k from (x_u, y)
            xub = xu[iu]
            o = (xub @ P["W"])[:, None, :] + P["U"][None] + P["c"]  # (Bu, C, H)
            py = torch.softmax(P["d"] + F.softplus(o).sum(-1), -1)  # exact p(y | x_u)
            ys = _categorical(py, g)
            if positive == "sample":
                pos = _stats(xub, ys, _hid(xub, ys, P))
            else:  # the expectation over y ~ p(y | x_u), exactly
                sig = torch.sigmoid(o)
                mh = torch.einsum("bc,bch->bh", py, sig)
                nu = len(xub)
                pos = {"W": xub.T @ mh / nu, "b": xub.mean(0), "c": mh.mean(0),
                       "U": torch.einsum("bc,bch->ch", py, sig) / nu, "d": py.mean(0)}  # fmt: skip
            xn, yn = _gibbs(xub, ys, P, k, g)
            neg = _stats(xn, yn, _hid(xn, yn, P))
            grad = {n: grad[n] + beta * (pos[n] - neg[n]) for n in P}
        grad["W"] = grad["W"] - wd * P["W"]
        grad["U"] = grad["U"] - wd * P["U"]
        for n in P:
            delta[n] = mu * delta[n] + lr * grad[n]
            P[n] = P[n] + delta[n]
    return P


CLASS_RBM_CASES = {
    "generative": dict(objective="generative", k=2),
    "discriminative": dict(objective="discriminative"),
    "hybrid": dict(objective="hybrid", alpha=0.3),
    "semi-supervised-sample": dict(objective="hybrid", alpha=0.3, beta=0.4, unlabeled=True),
    "semi-supervised-expected": dict(
        objective="discriminative", beta=0.7, unlabeled=True, unlabeled_positive="expected", k=2
    ),
}


@pytest.mark.parametrize("case", list(CLASS_RBM_CASES))
def test_class_rbm_steps_match_transcription(case):
    """train_class_rbm, every objective (generative CD-k, discriminative, hybrid, and the
    semi-supervised term with both positive phases), momentum and weight decay: 4 steps (two
    epochs of two batches; the unlabeled stream straddles permutations) against the float64
    transcription of Larochelle & Bengio 2008 (eq. 2-3, Sec. 4-5)."""
    opts = dict(CLASS_RBM_CASES[case])
    unlabeled = opts.pop("unlabeled", False)
    gd = torch.Generator().manual_seed(5)
    x = torch.bernoulli(torch.full((6, 5), 0.5, dtype=D), generator=gd)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    xu = torch.bernoulli(torch.full((5, 5), 0.5, dtype=D), generator=gd) if unlabeled else None
    model = ClassRBM(5, 4, 3, init_scale=1.0, dtype=D, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        for bias in (model.b, model.c):
            bias.uniform_(-0.5, 0.5, generator=gd)
        model.d.copy_(torch.tensor([2.0, -1.0, 0.0]))  # p(y | x) far from uniform
        model.U.mul_(2.0)
    P = {n: p.detach().clone() for n, p in model.named_parameters()}
    kw = dict(lr=0.2, momentum=0.5, weight_decay=0.05)
    train_class_rbm(
        model, x, y, x_unlabeled=xu, epochs=2, batch_size=3, unlabeled_batch_size=2,
        steps_per_epoch=2, generator=torch.Generator().manual_seed(7), **kw, **opts,
    )  # fmt: skip
    want = _class_rbm_reference(
        P, x, y, xu, objective=opts["objective"], alpha=opts.get("alpha", 0.0),
        beta=opts.get("beta", 0.0), lr=0.2, mu=0.5, wd=0.05, k=opts.get("k", 1),
        positive=opts.get("unlabeled_positive", "sample"), bs=3, ubs=2, steps=4, seed=7,
    )  # fmt: skip
    moved = False
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), want[n], **TOL, msg=f"{case}: {n}")
        moved |= not torch.equal(p.detach(), P[n])
    assert moved


# ------------------------------------------------------------------ autoencoders


def _encode(x, W, b, activation):
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh}[activation](x @ W.T + b)


def _ae_reference(W, b, c, Wd, data, *, corruption, rate, activation, loss, emphasis,
                  contractive, lr, mu, bs, epochs, seed):  # fmt: skip
    """Vincent et al. 2008/2010 (DAE, emphasis Sec. 4.4), Rifai et al. 2011 (contractive): per
    epoch a random permutation, per batch the corruption draws, then one SGD-with-momentum step
    (b <- mu b + grad, theta -= lr b) on L(x, g(f(x~))) [* alpha | beta] + lambda ||J_f(x)||_F^2.
    The Jacobian is taken by autograd of the hand encoder; ``Wd=None`` means W' = W^T (tied)."""
    P = {"W": W.clone(), "b": b.clone(), "c": c.clone()}
    if Wd is not None:
        P["W_dec"] = Wd.clone()
    buf = {n: None for n in P}
    g = torch.Generator().manual_seed(seed)
    n = data.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for start in range(0, n, bs):
            x = data[perm[start : start + bs]]
            if corruption == "masking":  # x~_i = 0 with probability rate
                mask = torch.rand(x.shape, generator=g, dtype=D) < rate
                xt = torch.where(mask, 0.0, x)
            elif corruption == "salt_and_pepper":  # x~_i in {0, 1}, 1/2 each, w.p. rate
                mask = torch.rand(x.shape, generator=g, dtype=D) < rate
                salt = torch.rand(x.shape, generator=g, dtype=D) < 0.5
                xt = torch.where(mask, salt.to(D), x)
            elif corruption == "gaussian":  # x~ = x + rate * N(0, I)
                mask = torch.ones_like(x, dtype=torch.bool)
                xt = x + rate * torch.randn(x.shape, generator=g, dtype=D)
            else:
                mask, xt = torch.zeros_like(x, dtype=torch.bool), x
            Q = {k: t.clone().requires_grad_(True) for k, t in P.items()}
            dec = Q["W"].T if Wd is None else Q["W_dec"]  # (n_visible, n_hidden)
            a = _encode(xt, Q["W"], Q["b"], activation) @ dec.T + Q["c"]
            if loss == "cross_entropy":  # -x log z - (1 - x) log(1 - z), z = sigmoid(a)
                z = torch.sigmoid(a)
                per = -x * torch.log(z) - (1 - x) * torch.log1p(-z)
            else:  # squared error, linear decoder
                per = (x - a) ** 2
            if emphasis is not None:
                per = per * torch.where(mask, emphasis[0], emphasis[1])
            obj = per.sum(-1).mean()
            if contractive:  # ||J_f(x)||_F^2 at the clean x, batch mean
                J = torch.func.vmap(
                    torch.func.jacrev(lambda v, Q=Q: _encode(v, Q["W"], Q["b"], activation))
                )(x)  # (B, n_hidden, n_visible)
                obj = obj + contractive * J.square().sum((1, 2)).mean()
            grads = torch.autograd.grad(obj, list(Q.values()))
            for (k, t), gr in zip(P.items(), grads):
                buf[k] = gr if buf[k] is None else mu * buf[k] + gr
                P[k] = t - lr * buf[k]
    return P


AE_CASES = {
    "masking-tied-ce": dict(corruption="masking", rate=0.3),
    "salt-and-pepper-untied-ce": dict(corruption="salt_and_pepper", rate=0.4, tied=False),
    "gaussian-tanh-squared": dict(
        corruption="gaussian", rate=0.2, activation="tanh", loss="squared_error"
    ),
    "contractive-untied": dict(corruption="none", contractive=0.5, tied=False),
    "contractive-masking-tanh": dict(
        corruption="masking",
        rate=0.25,
        contractive=0.3,
        activation="tanh",
        loss="squared_error",
    ),  # fmt: skip
    "emphasis-masking": dict(corruption="masking", rate=0.5, emphasis=(1.0, 0.1)),
    "emphasis-salt-and-pepper-squared": dict(
        corruption="salt_and_pepper",
        rate=0.3,
        emphasis=(2.0, 0.5),
        loss="squared_error",
        tied=False,
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", list(AE_CASES))
def test_autoencoder_steps_match_transcription(case):
    """train_autoencoder, every variant (masking / salt-and-pepper / Gaussian noise, tied and
    untied weights, cross-entropy and squared error, sigmoid and tanh codes, contractive penalty,
    emphasis weights), SGD with momentum: 2 epochs of 2 batches (the last one smaller) against
    the float64 transcription."""
    o = dict(AE_CASES[case])
    tied, activation = o.pop("tied", True), o.pop("activation", "sigmoid")
    loss = o.pop("loss", "cross_entropy")
    data = torch.rand(7, 5, generator=torch.Generator().manual_seed(1), dtype=D)
    if loss == "cross_entropy":
        data = torch.bernoulli(data, generator=torch.Generator().manual_seed(2))
    model = DenoisingAutoencoder(
        5, 3, activation=activation, tied=tied, loss=loss, dtype=D,
        generator=torch.Generator().manual_seed(3),
    )  # fmt: skip
    with torch.no_grad():
        model.b.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(4))
        model.c.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(5))
    W, b, c = (t.detach().clone() for t in (model.W, model.b, model.c))
    Wd = None if tied else model.W_dec.detach().clone()
    train_autoencoder(
        model, data, epochs=2, lr=0.3, batch_size=4, optimizer="momentum",
        optimizer_options={"momentum": 0.6}, generator=torch.Generator().manual_seed(9), **o,
    )  # fmt: skip
    want = _ae_reference(
        W, b, c, Wd, data, corruption=o["corruption"], rate=o.get("rate", 0.0),
        activation=activation, loss=loss, emphasis=o.get("emphasis"),
        contractive=o.get("contractive", 0.0), lr=0.3, mu=0.6, bs=4, epochs=2, seed=9,
    )  # fmt: skip
    for n, ref in want.items():
        got = getattr(model, n).detach()
        torch.testing.assert_close(got, ref, **TOL, msg=f"{case}: {n}")
    assert not torch.equal(model.W.detach(), W)


# ------------------------------------------------------------------ Gaussian RBM


def test_gaussian_rbm_learned_variance_steps():
    """train_rbm on a Gaussian-Bernoulli RBM with learned variances (Cho, Ilin & Raiko 2011),
    momentum and weight-cost: 2 CD-1 steps against the float64 transcription; the gradient is
    autograd of the batch mean of -E(v, p(h|v)) in the two phases, with
    E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c'h - sum_ij (v_i / sigma_i^2) W_ij h_j,
    sigma_i^2 = exp(z_i), the hidden probabilities held fixed (E is linear in h)."""
    data = torch.randn(6, 4, generator=torch.Generator().manual_seed(20), dtype=D) * 1.3 + 0.2
    rbm = GaussianBernoulliRBM(
        4, 3, learn_variance=True, log_var_init=0.4, init_std=0.6, dtype=D,
        generator=torch.Generator().manual_seed(21),
    )  # fmt: skip
    P = {n: t.detach().clone() for n, t in (("W", rbm.W), ("b", rbm.b), ("c", rbm.c),
                                            ("log_var", rbm.log_var))}  # fmt: skip
    lr, mu, wd = 0.05, 0.5, 0.02
    delta = {n: torch.zeros_like(t) for n, t in P.items()}
    g = torch.Generator().manual_seed(22)
    perm = torch.randperm(6, generator=g)

    def minus_energy(v, h, Q):
        var = torch.exp(Q["log_var"])
        quad = ((v - Q["b"]) ** 2 / (2 * var)).sum(-1)
        return -quad + h @ Q["c"] + (((v / var) @ Q["W"]) * h).sum(-1)

    for start in (0, 3):
        v0 = data[perm[start : start + 3]]
        var = torch.exp(P["log_var"])
        ph0 = torch.sigmoid((v0 / var) @ P["W"] + P["c"])
        h = torch.bernoulli(ph0, generator=g)
        mean = h @ P["W"].T + P["b"]
        v = mean + var.sqrt() * torch.randn(mean.shape, generator=g, dtype=D)  # N(b + Wh, s^2)
        phk = torch.sigmoid((v / var) @ P["W"] + P["c"])
        Q = {n: t.clone().requires_grad_(True) for n, t in P.items()}
        obj = minus_energy(v0, ph0, Q).mean() - minus_energy(v, phk, Q).mean()
        grad = dict(zip(Q, torch.autograd.grad(obj, list(Q.values()))))
        grad["W"] = grad["W"] - wd * P["W"]
        for n in P:
            delta[n] = mu * delta[n] + lr * grad[n]
            P[n] = P[n] + delta[n]
    train_rbm(
        rbm, data, epochs=1, batch_size=3, lr=lr, momentum=mu, weight_decay=wd,
        generator=torch.Generator().manual_seed(22),
    )  # fmt: skip
    for n, ref in P.items():
        torch.testing.assert_close(getattr(rbm, n).detach(), ref, **TOL, msg=n)
    assert not torch.allclose(rbm.log_var.detach(), torch.full((4,), 0.4, dtype=D))
