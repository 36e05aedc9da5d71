"""RBM energies, conditionals, gradients, training loop, PCD chains, pseudo-likelihood, samples."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from smithing.pretrain import rbm as R
from smithing.pretrain.rbm import (
    BernoulliRBM,
    GaussianBernoulliRBM,
    PersistentChains,
    train_rbm,
)

D = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls gain nothing from threads, and oversubscribed cores stall them badly."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def states(n: int) -> torch.Tensor:
    """All 2^n binary vectors, (2^n, n) float64."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=D)


def random_params(nv, nh, scale=1.0, seed=0, members=None):
    g = torch.Generator().manual_seed(seed)
    lead = () if members is None else (members,)
    W = torch.randn((*lead, nv, nh), generator=g, dtype=D) * scale
    b = torch.randn((*lead, nv), generator=g, dtype=D)
    c = torch.randn((*lead, nh), generator=g, dtype=D)
    return W, b, c


def make_rbm(nv, nh, scale=1.0, seed=0, members=None, cls=BernoulliRBM, **kw):
    rbm = cls(nv, nh, members=members, dtype=D, **kw)
    W, b, c = random_params(nv, nh, scale, seed, members)
    with torch.no_grad():
        rbm.W.copy_(W)
        rbm.b.copy_(b)
        rbm.c.copy_(c)
    return rbm


def energy_loops(v, h, W, b, c):
    """E(v, h) = -b^T v - c^T h - v^T W h, written with explicit sums (float64)."""
    out = torch.zeros(v.shape[0], dtype=D)
    for n in range(v.shape[0]):
        e = -sum(b[i] * v[n, i] for i in range(v.shape[1]))
        e -= sum(c[j] * h[n, j] for j in range(h.shape[1]))
        e -= sum(v[n, i] * W[i, j] * h[n, j] for i in range(v.shape[1]) for j in range(h.shape[1]))
        out[n] = e
    return out


# ------------------------------------------------------------------ Bernoulli pure functions


def test_energy_matches_explicit_sums():
    W, b, c = random_params(4, 3)
    g = torch.Generator().manual_seed(1)
    v = torch.bernoulli(torch.full((5, 4), 0.5, dtype=D), generator=g)
    h = torch.bernoulli(torch.full((5, 3), 0.5, dtype=D), generator=g)
    torch.testing.assert_close(R.energy(v, h, W, b, c), energy_loops(v, h, W, b, c))


def test_free_energy_marginalizes_energy_over_hidden():
    W, b, c = random_params(5, 4, scale=1.5)
    v, H = states(5), states(4)
    # F(v) = -log sum_h exp(-E(v, h)) by enumeration of all 16 hidden states
    E = torch.stack([R.energy(v, h.expand(len(v), -1), W, b, c) for h in H], -1)  # (32, 16)
    torch.testing.assert_close(R.free_energy(v, W, b, c), -torch.logsumexp(-E, -1))


def test_conditionals_match_enumerated_joint():
    W, b, c = random_params(4, 3, scale=1.5)
    V, H = states(4), states(3)
    E = torch.stack([R.energy(V, h.expand(len(V), -1), W, b, c) for h in H], -1)  # (16, 8)
    joint = torch.softmax(-E.flatten(), 0).view_as(E)  # p(v, h)
    p_h_given_v = joint / joint.sum(1, keepdim=True)  # (16, 8)
    p_v_given_h = joint / joint.sum(0, keepdim=True)
    torch.testing.assert_close(R.hidden_probs(V, W, c), p_h_given_v @ H)  # P(h_j=1|v)
    torch.testing.assert_close(R.visible_probs(H, W, b), p_v_given_h.T @ V)


def test_pure_functions_accept_members_axis():
    W, b, c = random_params(5, 4, members=3)
    g = torch.Generator().manual_seed(2)
    v = torch.bernoulli(torch.full((3, 6, 5), 0.5, dtype=D), generator=g)
    h = torch.bernoulli(torch.full((3, 6, 4), 0.5, dtype=D), generator=g)
    shared = v[0]  # (6, 5) broadcast to all members
    for m in range(3):
        args = (W[m], b[m], c[m])
        torch.testing.assert_close(R.energy(v, h, W, b, c)[m], R.energy(v[m], h[m], *args))
        torch.testing.assert_close(R.free_energy(v, W, b, c)[m], R.free_energy(v[m], *args))
        torch.testing.assert_close(R.free_energy(shared, W, b, c)[m], R.free_energy(shared, *args))
        torch.testing.assert_close(R.hidden_probs(v, W, c)[m], R.hidden_probs(v[m], W[m], c[m]))
        torch.testing.assert_close(R.visible_probs(h, W, b)[m], R.visible_probs(h[m], W[m], b[m]))
        grad = R.cd_gradient(v, h, h.new_ones(3, 2, 5), h.new_zeros(3, 2, 4))
        ref = R.cd_gradient(v[m], h[m], h.new_ones(2, 5), h.new_zeros(2, 4))
        for key in ref:
            torch.testing.assert_close(grad[key][m], ref[key])


# ------------------------------------------------------------------ gradient


def test_cd_gradient_is_the_expectation_difference():
    g = torch.Generator().manual_seed(3)
    vp, hp = torch.rand(7, 4, generator=g, dtype=D), torch.rand(7, 3, generator=g, dtype=D)
    vn, hn = torch.rand(5, 4, generator=g, dtype=D), torch.rand(5, 3, generator=g, dtype=D)
    grad = R.cd_gradient(vp, hp, vn, hn)
    dW = np.zeros((4, 3))
    for i in range(4):
        for j in range(3):
            dW[i, j] = (vp[:, i] * hp[:, j]).mean() - (vn[:, i] * hn[:, j]).mean()
    np.testing.assert_allclose(grad["W"].numpy(), dW, rtol=1e-12)
    np.testing.assert_allclose(grad["b"].numpy(), (vp.mean(0) - vn.mean(0)).numpy())
    np.testing.assert_allclose(grad["c"].numpy(), (hp.mean(0) - hn.mean(0)).numpy())


def _exact_loglik_grad(W, b, c, data):
    """d/dtheta of mean(log p(data)) by autograd through the enumerated log Z."""
    params = [t.clone().requires_grad_(True) for t in (W, b, c)]
    V = states(W.shape[0])
    log_z = torch.logsumexp(-R.free_energy(V, *params), 0)
    ll = (-R.free_energy(data, *params)).mean() - log_z
    return dict(zip("Wbc", torch.autograd.grad(ll, params)))


def test_cd_gradient_with_exact_model_expectation_equals_loglik_gradient():
    W, b, c = random_params(6, 4, scale=0.7)
    g = torch.Generator().manual_seed(4)
    data = torch.bernoulli(torch.full((20, 6), 0.4, dtype=D), generator=g)
    exact = _exact_loglik_grad(W, b, c, data)
    V = states(6)
    p = torch.softmax(-R.free_energy(V, W, b, c), 0)  # exact p(v), (64,)
    # model expectation computed exactly: sum_v p(v) v p(h|v)^T
    ph = R.hidden_probs(V, W, c)
    pos = R.cd_gradient(data, R.hidden_probs(data, W, c), V[:1] * 0, ph[:1] * 0)
    model = {"W": V.T @ (p[:, None] * ph), "b": p @ V, "c": p @ ph}
    for k in "Wbc":
        torch.testing.assert_close(pos[k] - model[k], exact[k])
    # an unbiased estimate from exact model samples agrees within its statistical error
    n = 20000
    idx = torch.multinomial(p, n, replacement=True, generator=g)
    v_neg = V[idx]
    h_neg = R.hidden_probs(v_neg, W, c)
    est = R.cd_gradient(data, R.hidden_probs(data, W, c), v_neg, h_neg)
    terms = {"W": v_neg[:, :, None] * h_neg[:, None, :], "b": v_neg, "c": h_neg}
    for k in "Wbc":
        se = terms[k].std(0) / math.sqrt(n)
        assert ((est[k] - exact[k]).abs() <= 5 * se + 1e-9).all(), k


# ------------------------------------------------------------------ Gaussian-Bernoulli


def gauss_rbm(nv=3, nh=4, seed=5, members=None):
    rbm = make_rbm(nv, nh, 0.5, seed, members, GaussianBernoulliRBM, learn_variance=True)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        rbm.log_var.copy_(torch.randn(rbm.log_var.shape, generator=g, dtype=D) * 0.5)
    return rbm


def test_gaussian_formulas_float64():
    rbm = gauss_rbm()
    W, b, c, z = rbm.W.detach(), rbm.b.detach(), rbm.c.detach(), rbm.log_var.detach()
    var = z.exp()
    g = torch.Generator().manual_seed(6)
    v = torch.randn(5, 3, generator=g, dtype=D)
    h = torch.bernoulli(torch.full((5, 4), 0.5, dtype=D), generator=g)
    E = ((v - b) ** 2 / (2 * var)).sum(1) - h @ c - torch.einsum("ni,ij,nj->n", v / var, W, h)
    torch.testing.assert_close(rbm.energy(v, h), E)
    H = states(4)
    Evh = torch.stack([rbm.energy(v, hh.expand(5, -1)) for hh in H], -1)
    torch.testing.assert_close(rbm.free_energy(v), -torch.logsumexp(-Evh, -1))
    p_h = torch.softmax(-Evh, -1) @ H  # P(h_j = 1 | v) by enumeration
    torch.testing.assert_close(rbm.hidden_probs(v), p_h)
    torch.testing.assert_close(rbm.hidden_probs(v), torch.sigmoid(c + (v / var) @ W))
    # p(v | h) = N(b + W h, sigma^2): the energy is minimal there, with curvature 1 / sigma^2
    mean = rbm.visible_mean(h).requires_grad_(True)
    (grad_v,) = torch.autograd.grad(rbm.energy(mean, h).sum(), mean)
    torch.testing.assert_close(grad_v, torch.zeros_like(grad_v))
    torch.testing.assert_close(mean.detach(), b + h @ W.T)
    draws = rbm.sample_visible(h[:1].expand(40000, -1), torch.Generator().manual_seed(7))
    torch.testing.assert_close(draws.mean(0), mean[0].detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(draws.var(0), var, atol=0.05, rtol=0.05)


def test_gaussian_gradient_with_exact_samples_matches_autograd():
    rbm = gauss_rbm(nv=2, nh=3, seed=8)
    P = {k: getattr(rbm, k).detach() for k in ("W", "b", "c", "log_var")}
    g = torch.Generator().manual_seed(9)
    data = torch.randn(30, 2, generator=g, dtype=D)
    H = states(3)

    def log_z(W, b, c, z):  # analytic integral over v, enumeration over h
        mu = b + H @ W.T
        return (
            torch.logsumexp(H @ c + ((mu**2 - b**2) / (2 * z.exp())).sum(1), 0)
            + 0.5 * (z + math.log(2 * math.pi)).sum()
        )

    params = [P[k].clone().requires_grad_(True) for k in ("W", "b", "c", "log_var")]
    ll = (-R.gaussian_free_energy(data, *params)).mean() - log_z(*params)
    exact = dict(zip(("W", "b", "c", "log_var"), torch.autograd.grad(ll, params)))
    # exact joint samples: h from its marginal, then v ~ N(b + W h, sigma^2)
    mu = P["b"] + H @ P["W"].T
    p_h = torch.softmax(H @ P["c"] + ((mu**2 - P["b"] ** 2) / (2 * P["log_var"].exp())).sum(1), 0)
    n = 40000
    hs = H[torch.multinomial(p_h, n, replacement=True, generator=g)]
    v_neg = R.sample_gaussian(rbm.visible_mean(hs).detach(), P["log_var"], g)
    est = R.gaussian_cd_gradient(
        data,
        rbm.hidden_probs(data).detach(),
        v_neg,
        rbm.hidden_probs(v_neg).detach(),
        P["W"],
        P["b"],
        P["log_var"],
    )
    for k in exact:
        torch.testing.assert_close(est[k], exact[k], atol=0.04, rtol=0.05, msg=k)


# ------------------------------------------------------------------ training loop


def _manual_training(
    rbm0, data, *, method, lr, momentum, wd, target, cost, damping, bs, seed, n_chains=3
):
    """A float64 transcription of train_rbm's documented update, same random draws."""
    W, b, c = (t.detach().clone() for t in (rbm0.W, rbm0.b, rbm0.c))
    g = torch.Generator().manual_seed(seed)
    chain = PersistentChains.init(rbm0, n_chains, generator=g).v if method == "pcd" else None
    vel = {k: torch.zeros_like(t) for k, t in zip("Wbc", (W, b, c))}
    q = None
    perm = torch.randperm(len(data), generator=g)
    for start in range(0, len(data), bs):
        v0 = data[perm[start : start + bs]]
        ph0 = torch.sigmoid(v0 @ W + c)
        h = torch.bernoulli(ph0, generator=g)
        if method == "cd":
            v = torch.bernoulli(torch.sigmoid(h @ W.T + b), generator=g)
        else:
            hh = torch.bernoulli(torch.sigmoid(chain @ W + c), generator=g)
            v = chain = torch.bernoulli(torch.sigmoid(hh @ W.T + b), generator=g)
        phn = torch.sigmoid(v @ W + c)
        grad = {
            "W": v0.T @ ph0 / len(v0) - v.T @ phn / len(v),
            "b": v0.mean(0) - v.mean(0),
            "c": ph0.mean(0) - phn.mean(0),
        }
        grad["W"] = grad["W"] - wd * W
        q = ph0.mean(0) if q is None else damping * q + (1 - damping) * ph0.mean(0)
        grad["c"] = grad["c"] - cost * (q - target)
        grad["W"] = grad["W"] - cost * v0.mean(0)[:, None] * (q - target)[None, :]
        for k, t in zip("Wbc", (W, b, c)):
            vel[k] = momentum * vel[k] + lr * grad[k]  # delta <- mu delta + lr g
            t += vel[k]
    return W, b, c, chain


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_train_rbm_matches_manual_transcription(method):
    rbm = make_rbm(5, 4, scale=0.5, seed=10)
    data = torch.bernoulli(
        torch.full((10, 5), 0.5, dtype=D), generator=torch.Generator().manual_seed(11)
    )
    kw = dict(lr=0.3, momentum=0.6, wd=0.01, target=0.2, cost=0.5, damping=0.8, bs=4)
    W, b, c, chain = _manual_training(rbm, data, method=method, seed=12, **kw)
    g = torch.Generator().manual_seed(12)
    chains = PersistentChains.init(rbm, 3, generator=g) if method == "pcd" else None
    train_rbm(
        rbm,
        data,
        epochs=1,
        batch_size=4,
        lr=0.3,
        method=method,
        chains=chains,
        momentum=0.6,
        weight_decay=0.01,
        sparsity_target=0.2,
        sparsity_cost=0.5,
        sparsity_damping=0.8,
        generator=g,
    )
    torch.testing.assert_close(rbm.W.detach(), W)
    torch.testing.assert_close(rbm.b.detach(), b)
    torch.testing.assert_close(rbm.c.detach(), c)
    if method == "pcd":
        torch.testing.assert_close(chains.v, chain)
        assert chains.updates == 3


def test_pcd_chains_persist_across_batches_and_calls():
    data = torch.bernoulli(
        torch.full((12, 6), 0.5, dtype=D), generator=torch.Generator().manual_seed(13)
    )
    kw = dict(batch_size=4, lr=0.1, method="pcd", k=1)
    # strong weights: chains driven by common random numbers would otherwise coalesce at once

    a = make_rbm(6, 3, 2.0, 14)
    ga = torch.Generator().manual_seed(15)
    ca = PersistentChains.init(a, 5, generator=ga)
    start = ca.v
    train_rbm(a, data, epochs=2, chains=ca, generator=ga, **kw)
    assert ca.updates == 6 and ca.v is not start and ca.v.shape == (5, 6)

    b = make_rbm(6, 3, 2.0, 14)
    gb = torch.Generator().manual_seed(15)
    cb = PersistentChains.init(b, 5, generator=gb)
    train_rbm(b, data, epochs=1, chains=cb, generator=gb, **kw)
    after_one = cb.v
    train_rbm(b, data, epochs=1, chains=cb, generator=gb, **kw)  # continues the same chains
    assert cb.updates == 6 and cb.v is not after_one
    torch.testing.assert_close(cb.v, ca.v)
    torch.testing.assert_close(b.W, a.W)
    # restarting the chains instead changes the result
    c = make_rbm(6, 3, 2.0, 14)
    gc = torch.Generator().manual_seed(15)
    cc = PersistentChains.init(c, 5, generator=gc)
    train_rbm(c, data, epochs=1, chains=cc, generator=gc, **kw)
    train_rbm(c, data, epochs=1, chains=PersistentChains(cc.v.clone() * 0), generator=gc, **kw)
    assert not torch.allclose(c.W, a.W)


def test_ensemble_members_are_independent_and_history_per_member():
    data = torch.bernoulli(torch.full((16, 6), 0.4), generator=torch.Generator().manual_seed(16))
    runs = []
    for lr in ([0.1, 0.1], [0.1, 0.5]):
        rbm = BernoulliRBM(6, 4, members=2, generator=torch.Generator().manual_seed(17))
        hist = train_rbm(
            rbm,
            data,
            epochs=2,
            batch_size=5,
            lr=lr,
            method="pcd",
            k=1,
            generator=torch.Generator().manual_seed(18),
            valid_data=data[:4],
        )
        runs.append((rbm, hist))
    (r1, h1), (r2, h2) = runs
    torch.testing.assert_close(r1.W[0], r2.W[0])  # member 0 untouched by member 1's lr
    assert not torch.allclose(r1.W[1], r2.W[1])
    assert not torch.allclose(r1.W[0], r1.W[1])  # members differ (own init, order, chains)
    for key in ("recon_error", "pseudo_likelihood", "free_energy_train", "free_energy_valid"):
        assert len(h1[key]) == 2 and len(h1[key][0]) == 2, key
    assert h1["lr"][0] == pytest.approx([0.1, 0.1])


def test_train_rbm_learns_and_monitors():
    g = torch.Generator().manual_seed(19)
    protos = torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1.0]])
    data = protos[torch.randint(2, (200,), generator=g)]
    data = (data + torch.bernoulli(torch.full_like(data, 0.05), generator=g)) % 2
    rbm = BernoulliRBM(8, 4, generator=g).init_visible_bias_(data)
    seen = []
    hist = train_rbm(
        rbm,
        data,
        epochs=12,
        batch_size=20,
        lr=0.2,
        momentum="hinton",
        schedule=lambda e: 1.0 / (1 + 0.1 * e),
        generator=g,
        callbacks=[lambda e, rec, model: seen.append(e)],
    )
    assert seen == list(range(1, 13)) and hist["momentum"][0] == 0.5 and hist["momentum"][-1] == 0.9
    assert hist["lr"][-1] == pytest.approx(0.2 / 2.1)
    assert hist["recon_error"][-1] < hist["recon_error"][0]
    assert hist["pseudo_likelihood"][-1] > hist["pseudo_likelihood"][0]
    stop = train_rbm(rbm, data, epochs=5, generator=g, callbacks=[lambda e, rec, m: e == 2])
    assert stop["epoch"] == [1, 2] and stop.stop_reason == "callback"


def test_gaussian_rbm_trains_with_learned_variance():
    g = torch.Generator().manual_seed(20)
    data = torch.randn(300, 4, generator=g) * torch.tensor([0.5, 1.0, 2.0, 1.0])
    rbm = GaussianBernoulliRBM(4, 3, learn_variance=True, generator=g).init_visible_bias_(data)
    hist = train_rbm(rbm, data, epochs=10, batch_size=30, lr=0.05, generator=g)
    assert "pseudo_likelihood" not in hist
    sd = rbm.log_var.detach().exp().sqrt()
    assert torch.isfinite(sd).all() and sd[0] < sd[2]  # variances follow the data's
    fixed = GaussianBernoulliRBM(4, 3, generator=g)
    assert "log_var" not in dict(fixed.named_parameters())
    train_rbm(fixed, data, epochs=1, method="pcd", generator=g)
    assert (fixed.log_var == 0).all()


def test_pseudo_likelihood_equals_sklearn_score_samples():
    from sklearn.neural_network import BernoulliRBM as SkRBM

    W, b, c = random_params(7, 5)
    X = np.random.RandomState(0).randint(0, 2, (9, 7)).astype(float)
    sk = SkRBM(n_components=5, n_iter=1, random_state=3).fit(X)
    sk.components_, sk.intercept_hidden_, sk.intercept_visible_ = W.T.numpy(), c.numpy(), b.numpy()
    expected = sk.score_samples(X)
    flip = torch.from_numpy(np.random.RandomState(3).randint(0, 7, 9))  # sklearn's indices
    v = torch.from_numpy(X)
    got = R.pseudo_likelihood(lambda x: R.free_energy(x, W, b, c), v, flip_index=flip)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


# ------------------------------------------------------------------ sampling, figure, errors


def test_gibbs_sampling_converges_to_exact_distribution():
    rbm = make_rbm(4, 3, scale=1.0, seed=21)
    V = states(4)
    exact = torch.softmax(-rbm.free_energy(V).detach(), 0)
    g = torch.Generator().manual_seed(22)
    v = R.sample(rbm, 4000, steps=30, generator=g, return_mean=False)
    codes = (v @ (2 ** torch.arange(3, -1, -1, dtype=D))).long()
    emp = torch.bincount(codes, minlength=16).to(D) / len(v)
    assert 0.5 * (emp - exact).abs().sum() < 0.04  # total variation distance
    mean = R.sample(rbm, 3, steps=2, generator=g, init=V[:3])
    assert mean.shape == (3, 4) and ((mean > 0) & (mean < 1)).all()


def test_filters_figure_writes_png(tmp_path):
    rbm = BernoulliRBM(16, 5, members=2)
    out = R.filters_figure(rbm, (4, 4), tmp_path / "f" / "filters.png", member=1, title="W")
    assert out.exists() and out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match=r"image_shape=\(3, 3\) is invalid"):
        R.filters_figure(rbm, (3, 3), tmp_path / "x.png")


def test_validation_messages():
    rbm = BernoulliRBM(4, 2)
    x = torch.zeros(5, 4)
    with pytest.raises(ValueError, match="method='sml' is invalid: expected 'cd' or 'pcd'"):
        train_rbm(rbm, x, method="sml")
    with pytest.raises(ValueError, match=r"data.shape=\(5, 3\) is invalid: expected \(n, 4\)"):
        train_rbm(rbm, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="k=0 is invalid"):
        train_rbm(rbm, x, k=0)
    with pytest.raises(ValueError, match="momentum='nesterov' is invalid"):
        train_rbm(rbm, x, momentum="nesterov")
    with pytest.raises(ValueError, match=r"lr=\[0.1, 0.2\] is invalid"):
        train_rbm(rbm, x, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="n_hidden=0 is invalid"):
        BernoulliRBM(4, 0)
    with pytest.raises(ValueError, match=r"chains.v.shape=\(3, 5\) is invalid"):
        train_rbm(rbm, x, method="pcd", chains=PersistentChains(torch.zeros(3, 5)))


def test_state_dict_round_trip_and_inputs_not_mutated():
    rbm = GaussianBernoulliRBM(4, 3, members=2, learn_variance=True)
    other = GaussianBernoulliRBM(4, 3, members=2, learn_variance=True)
    other.load_state_dict(rbm.state_dict())
    torch.testing.assert_close(other.W, rbm.W)
    data = torch.randn(8, 4)
    copy = data.clone()
    train_rbm(rbm, data, epochs=1, batch_size=4, lr=0.01)
    torch.testing.assert_close(data, copy)


@pytest.mark.parametrize("gaussian", [False, True])
def test_train_rbm_steps_with_the_public_cd_gradient(monkeypatch, gaussian):
    """train_rbm's update is the public (gaussian_)cd_gradient: replace it with zeros and the
    parameters must not move (weight decay and sparsity off); restore it and they do."""
    import smithing.pretrain.rbm.modules as modules

    def make():
        g = torch.Generator().manual_seed(0)
        cls = GaussianBernoulliRBM if gaussian else BernoulliRBM
        return cls(6, 4, generator=g)

    data = torch.rand(40, 6, generator=torch.Generator().manual_seed(1))
    if not gaussian:
        data = data.bernoulli(generator=torch.Generator().manual_seed(2))
    name = "gaussian_cd_gradient" if gaussian else "cd_gradient"
    real = getattr(modules, name)
    calls = []

    def zero(*args, **kwargs):
        calls.append(1)
        return {k: torch.zeros_like(v) for k, v in real(*args, **kwargs).items()}

    rbm = make()
    before = {k: v.clone() for k, v in rbm.state_dict().items()}
    monkeypatch.setattr(modules, name, zero)
    train_rbm(rbm, data, epochs=1, batch_size=10, generator=torch.Generator().manual_seed(3))
    assert len(calls) == 4
    for k, v in rbm.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    monkeypatch.setattr(modules, name, real)
    train_rbm(rbm, data, epochs=1, batch_size=10, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(rbm.W, before["W"])


def _manual_epochs(rbm0, data, *, method, k, negative_visible, lrs, moms, bs, seed, n_chains=3):
    """A float64 transcription of train_rbm over several epochs with CD-k / PCD-k, either kind
    of negative visible state, a per-epoch learning-rate factor and momentum, and the same
    random draws (the per-epoch pseudo-likelihood monitor draws its flip indices too)."""
    W, b, c = (t.detach().clone() for t in (rbm0.W, rbm0.b, rbm0.c))
    g = torch.Generator().manual_seed(seed)
    chain = PersistentChains.init(rbm0, n_chains, generator=g).v if method == "pcd" else None
    vel = {key: torch.zeros_like(t) for key, t in zip("Wbc", (W, b, c))}
    for lr, mom in zip(lrs, moms):
        perm = torch.randperm(len(data), generator=g)
        for start in range(0, len(data), bs):
            v0 = data[perm[start : start + bs]]
            ph0 = torch.sigmoid(v0 @ W + c)
            h = torch.bernoulli(ph0, generator=g)
            if method == "cd":  # k sweeps from the data
                v = v0
                for step in range(k):
                    if step > 0:
                        h = torch.bernoulli(torch.sigmoid(v @ W + c), generator=g)
                    mean = torch.sigmoid(h @ W.T + b)
                    v = torch.bernoulli(mean, generator=g)
            else:  # k sweeps of the persistent chains
                for _ in range(k):
                    hh = torch.bernoulli(torch.sigmoid(chain @ W + c), generator=g)
                    mean = torch.sigmoid(hh @ W.T + b)
                    v = chain = torch.bernoulli(mean, generator=g)
            vn = mean if negative_visible == "mean" else v
            phn = torch.sigmoid(vn @ W + c)
            grad = {
                "W": v0.T @ ph0 / len(v0) - vn.T @ phn / len(vn),
                "b": v0.mean(0) - vn.mean(0),
                "c": ph0.mean(0) - phn.mean(0),
            }
            for key, t in zip("Wbc", (W, b, c)):
                vel[key] = mom * vel[key] + lr * grad[key]  # delta <- mu delta + lr g
                t += vel[key]
        torch.randint(data.shape[1], (len(data),), generator=g)  # the monitor's flips
    return W, b, c


@pytest.mark.parametrize("method", ["cd", "pcd"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("negative_visible", ["sample", "mean"])
def test_train_rbm_k_negative_visible_and_schedules_match_transcription(
    method, k, negative_visible
):
    rbm = make_rbm(5, 4, scale=0.5, seed=20)
    data = torch.bernoulli(
        torch.full((9, 5), 0.5, dtype=D), generator=torch.Generator().manual_seed(21)
    )
    factors, moms = [1.0, 0.5, 0.25], [0.0, 0.5, 0.9]  # momentum off, then on
    W, b, c = _manual_epochs(
        rbm,
        data,
        method=method,
        k=k,
        negative_visible=negative_visible,
        lrs=[0.2 * f for f in factors],
        moms=moms,
        bs=4,
        seed=22,
    )
    g = torch.Generator().manual_seed(22)
    chains = PersistentChains.init(rbm, 3, generator=g) if method == "pcd" else None
    history = train_rbm(
        rbm,
        data,
        epochs=3,
        batch_size=4,
        lr=0.2,
        method=method,
        k=k,
        chains=chains,
        momentum=lambda e: moms[e],
        schedule=lambda e: factors[e],
        negative_visible=negative_visible,
        generator=g,
    )
    torch.testing.assert_close(rbm.W.detach(), W)
    torch.testing.assert_close(rbm.b.detach(), b)
    torch.testing.assert_close(rbm.c.detach(), c)
    assert [round(x, 12) for x in history["momentum"]] == moms


def test_hinton_momentum_schedule():
    from smithing.pretrain.rbm.training import _momentum_schedule

    at = _momentum_schedule("hinton")
    assert [at(e) for e in range(7)] == [0.5] * 5 + [0.9] * 2


def test_monitor_reconstruction_off_skips_only_the_monitoring():
    from smithing.pretrain import BernoulliRBM, train_rbm
    from smithing.pretrain.rbm.sampling import PersistentChains

    x = (torch.rand(64, 12, generator=torch.Generator().manual_seed(0)) < 0.4).float()

    def trained(method, monitor):
        g = torch.Generator().manual_seed(1)
        rbm = BernoulliRBM(12, 6, generator=g)
        chains = PersistentChains.init(rbm, 16, generator=g) if method == "pcd" else None
        h = train_rbm(rbm, x, epochs=2, batch_size=16, lr=0.1, method=method, chains=chains,
                      monitor_reconstruction=monitor, generator=g)  # fmt: skip
        return rbm, h

    on, h_on = trained("cd", True)
    off, h_off = trained("cd", False)
    # CD needs the reconstruction for its negative phase: the same draws, the same RBM
    assert all(torch.equal(a, b) for a, b in zip(on.parameters(), off.parameters()))
    assert "recon_error" in h_on.epochs[0] and "recon_error" not in h_off.epochs[0]
    assert h_on["free_energy_train"] == h_off["free_energy_train"]
    # PCD's reconstruction is monitoring only: off, it is not drawn (another random stream)
    pcd_on, _ = trained("pcd", True)
    pcd_off, h = trained("pcd", False)
    assert not torch.equal(pcd_on.W, pcd_off.W) and "recon_error" not in h.epochs[-1]
    assert torch.isfinite(pcd_off.W).all() and len(h.epochs) == 2


def test_gaussian_energy_gradient_and_pseudo_likelihood_of_stacked_members_are_each_members():
    """The ``(*M, ...)`` axis convention: an ensemble's values are each member's own (the batch
    and visible axes counted from the end, never from the front)."""
    g = torch.Generator().manual_seed(0)
    M, n, nv, nh = 2, 5, 7, 3
    v = torch.randn(M, n, nv, generator=g, dtype=torch.float64)
    h = (torch.rand(M, n, nh, generator=g, dtype=torch.float64) < 0.5).double()
    W = torch.randn(M, nv, nh, generator=g, dtype=torch.float64)
    b, c = (
        torch.randn(M, nv, generator=g, dtype=torch.float64),
        torch.randn(M, nh, generator=g, dtype=torch.float64),
    )
    lv = 0.3 * torch.randn(M, nv, generator=g, dtype=torch.float64)
    v_neg, h_neg = v.flip(-2), h.flip(-2)
    energy = R.gaussian_energy(v, h, W, b, c, lv)
    grad = R.gaussian_cd_gradient(v, h, v_neg, h_neg, W, b, lv)
    for m in range(M):
        torch.testing.assert_close(
            energy[m], R.gaussian_energy(v[m], h[m], W[m], b[m], c[m], lv[m])
        )
        one = R.gaussian_cd_gradient(v[m], h[m], v_neg[m], h_neg[m], W[m], b[m], lv[m])
        for key in one:
            torch.testing.assert_close(grad[key][m], one[key], msg=key)
    # the pseudo-likelihood flips the same unit of each example in every member
    vb = (torch.rand(M, n, nv, generator=g, dtype=torch.float64) < 0.5).double()
    flips = torch.tensor([0, 6, 2, 3, 6])

    def fe(x):  # a member-wise free energy: sum of member-specific weights times x
        return (x * W[..., 0].unsqueeze(-2)).sum(-1) if x.dim() == 3 else None

    pl = R.pseudo_likelihood(fe, vb, flip_index=flips)
    for m in range(M):
        pl_m = R.pseudo_likelihood(lambda x, m=m: (x * W[m, :, 0]).sum(-1), vb[m], flip_index=flips)
        torch.testing.assert_close(pl[m], pl_m)
    assert pl.shape == (M, n)
