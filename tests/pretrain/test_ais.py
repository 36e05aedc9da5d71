"""Exact and AIS partition functions of small RBMs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from smithing.pretrain import ais
from smithing.pretrain import rbm as R
from smithing.pretrain.rbm import BernoulliRBM, GaussianBernoulliRBM

D = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls gain nothing from threads, and oversubscribed cores stall them badly."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=D)


def make_rbm(nv, nh, scale=1.0, seed=0, members=None, cls=BernoulliRBM, **kw):
    rbm = cls(nv, nh, members=members, dtype=D, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        rbm.W.copy_(torch.randn(rbm.W.shape, generator=g, dtype=D) * scale)
        rbm.b.copy_(torch.randn(rbm.b.shape, generator=g, dtype=D))
        rbm.c.copy_(torch.randn(rbm.c.shape, generator=g, dtype=D))
    return rbm


def joint_log_z(rbm, m=None):
    """log sum_{v,h} exp(-E(v, h)) over every joint state (float64 brute force)."""
    W, b, c = (t.detach() if m is None else t.detach()[m] for t in (rbm.W, rbm.b, rbm.c))
    V, H = states(W.shape[0]), states(W.shape[1])
    E = torch.stack([R.energy(V, h.expand(len(V), -1), W, b, c) for h in H], -1)
    return torch.logsumexp(-E.flatten(), 0)


@pytest.mark.parametrize("nv, nh", [(6, 4), (4, 6)])  # enumerate hiddens / visibles
def test_exact_log_z_equals_joint_enumeration(nv, nh):
    rbm = make_rbm(nv, nh, scale=1.5, seed=1)
    torch.testing.assert_close(ais.exact_log_z(rbm, chunk=5), joint_log_z(rbm))


def test_exact_log_z_members_and_normalization():
    rbm = make_rbm(5, 3, seed=2, members=3)
    lz = ais.exact_log_z(rbm)
    assert lz.shape == (3,)
    for m in range(3):
        torch.testing.assert_close(lz[m], joint_log_z(rbm, m))
    # log p(v) = -F(v) - log Z sums to one over all v (average_log_prob of each single state)
    V = states(5)
    logp = torch.stack([ais.average_log_prob(rbm, v[None], lz) for v in V], -1)  # (3, 32)
    torch.testing.assert_close(torch.logsumexp(logp, -1), torch.zeros(3, dtype=D))


def test_exact_log_z_gaussian_matches_numerical_integral():
    rbm = make_rbm(1, 3, scale=0.8, seed=3, cls=GaussianBernoulliRBM, learn_variance=True)
    with torch.no_grad():
        rbm.log_var.fill_(math.log(0.7))
    grid = torch.linspace(-15, 15, 30001, dtype=D)[:, None]  # integrate exp(-F(v)) dv
    integrand = torch.exp(-rbm.free_energy(grid).detach())
    numeric = math.log(torch.trapezoid(integrand, grid[:, 0]).item())
    assert ais.exact_log_z(rbm).item() == pytest.approx(numeric, abs=1e-8)


def test_exact_log_z_refuses_large_layers():
    with pytest.raises(ValueError, match=r"rbm='30x30 RBM' is invalid: .*max_units=24"):
        ais.exact_log_z(BernoulliRBM(30, 30))


def test_salakhutdinov_betas_and_base_rate():
    betas = ais.salakhutdinov_betas()
    assert len(betas) == 14501 and betas[0] == 0 and betas[-1] == 1
    steps = betas.diff()
    assert (steps > 0).all()
    torch.testing.assert_close(steps[:500], torch.full((500,), 1e-3, dtype=D))
    torch.testing.assert_close(steps[500:4500], torch.full((4000,), 1e-4, dtype=D))
    torch.testing.assert_close(steps[4500:], torch.full((10000,), 1e-5, dtype=D))
    data = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    p = (torch.tensor([1.0, 0.0, 0.5], dtype=D) + 0.05) / 1.05  # base_rate.m smoothing
    p = p.clamp(1e-6, 1 - 1e-6)  # the documented clip of an always-on pixel
    torch.testing.assert_close(ais.base_rate_biases(data), torch.log(p / (1 - p)))


def test_ais_within_error_bar_of_exact_log_z():
    rbm = make_rbm(10, 8, scale=1.0, seed=4)
    g = torch.Generator().manual_seed(5)
    data = torch.bernoulli(torch.full((50, 10), 0.3, dtype=D), generator=g)
    exact = ais.exact_log_z(rbm)
    for kwargs in ({"data": data}, {}):  # base rate from data, and the uniform base model
        res = ais.ais_log_z(rbm, n_runs=100, betas=2000, generator=g, **kwargs)
        assert res.log_weights.shape == (100,) and res.n_betas == 2000
        assert res.log_z_down <= exact <= res.log_z_up, (res, exact)
        assert abs(res.log_z - exact) < 0.1
    lp = ais.average_log_prob(rbm, data, res)
    torch.testing.assert_close(lp, ais.average_log_prob(rbm, data, exact), atol=0.1, rtol=0)


def test_ais_ensemble_and_gaussian():
    rbm = make_rbm(8, 6, scale=0.8, seed=6, members=2)
    g = torch.Generator().manual_seed(7)
    res = ais.ais_log_z(rbm, n_runs=50, betas=torch.linspace(0, 1, 1500, dtype=D), generator=g)
    exact = ais.exact_log_z(rbm)
    assert res.log_z.shape == (2,)
    assert ((res.log_z_down <= exact) & (exact <= res.log_z_up)).all(), (res, exact)
    grbm = make_rbm(5, 6, scale=0.5, seed=8, cls=GaussianBernoulliRBM, learn_variance=True)
    with torch.no_grad():
        grbm.log_var.copy_(torch.linspace(-0.5, 0.5, 5, dtype=D))
    data = torch.randn(40, 5, generator=g, dtype=D) + 0.5
    res = ais.ais_log_z(grbm, data=data, n_runs=100, betas=1500, generator=g)
    exact = ais.exact_log_z(grbm)
    assert res.log_z_down <= exact <= res.log_z_up, (res, exact)


def test_ais_validation():
    rbm = BernoulliRBM(4, 3)
    with pytest.raises(ValueError, match="n_runs=1 is invalid"):
        ais.ais_log_z(rbm, n_runs=1)
    with pytest.raises(ValueError, match="betas=.* is invalid: expected an increasing"):
        ais.ais_log_z(rbm, betas=torch.tensor([0.0, 0.7, 0.5, 1.0]))


@pytest.mark.slow
def test_ais_with_the_papers_schedule_on_a_trained_rbm():
    """The full 14,501-beta schedule and base-rate model on an RBM trained by CD-1 (~3 s)."""
    from smithing.pretrain.rbm import train_rbm

    g = torch.Generator().manual_seed(9)
    protos = torch.bernoulli(torch.full((4, 20), 0.5, dtype=D), generator=g)
    data = protos[torch.randint(4, (400,), generator=g)]
    data = (data + torch.bernoulli(torch.full_like(data, 0.05), generator=g)) % 2
    rbm = BernoulliRBM(20, 12, dtype=D, generator=g).init_visible_bias_(data)
    train_rbm(rbm, data, epochs=20, batch_size=20, lr=0.1, generator=g)
    res = ais.ais_log_z(rbm, data=data, generator=g)
    exact = ais.exact_log_z(rbm)
    assert res.n_betas == 14501
    assert res.log_z_down <= exact <= res.log_z_up and abs(res.log_z - exact) < 0.05
