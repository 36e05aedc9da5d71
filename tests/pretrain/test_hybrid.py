"""Classification RBM (generative / discriminative / hybrid / semi-supervised) and the deep hybrid
stack: exact posteriors, closed-form gradients against autograd, training invariants."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from smithing.pretrain import hybrid as H
from smithing.pretrain.ais import exact_log_z
from smithing.pretrain.hybrid import (
    ClassificationRBM,
    ClassRBM,
    DeepHybridRBM,
    train_class_rbm,
    train_deep_hybrid,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls gain nothing from threads, and oversubscribed cores stall them badly."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(seed=0, D=4, Hh=3, C=3, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    m = ClassRBM(D, Hh, C, init_scale=scale, generator=g, dtype=torch.float64)
    with torch.no_grad():  # non-zero biases so that every term is exercised
        for p in (m.b, m.c, m.d):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return m


def all_states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def toy_data(n=60, D=6, C=3, seed=0):
    """``C`` fixed prototypes with 10 % flipped bits: a learnable toy problem."""
    base = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0]])
    protos = base.repeat(1, D // 6 + 1)[:C, :D].double()  # Hamming distances >= 3
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(C, (n,), generator=g)
    flip = torch.bernoulli(torch.full((n, D), 0.1), generator=g)
    return (protos[y] - flip).abs(), y


# ----------------------------------------------------------------- exact quantities


def test_p_y_given_x_matches_brute_force_enumeration_over_h():
    m = tiny()
    W, b, c, U, d = m.params()
    xs = all_states(4)  # (16, 4)
    hs = all_states(3)  # (8, 3)
    eye = torch.eye(3, dtype=torch.float64)
    # E(y, x, h) for every (x, y, h) by the energy function itself
    logj = torch.empty(16, 3, dtype=torch.float64)
    for yi in range(3):
        for ni in range(16):
            xr = xs[ni].expand(8, 4)
            yr = eye[yi].expand(8, 3)
            e = H.joint_energy(xr, yr, hs, W, b, c, U, d)  # (8,)
            logj[ni, yi] = torch.logsumexp(-e, 0)  # log sum_h exp(-E)
    brute = torch.softmax(logj, -1)  # p(y | x)
    with torch.no_grad():
        torch.testing.assert_close(m.predict_proba(xs), brute, rtol=1e-12, atol=1e-14)
        # the free energy is -log sum_h exp(-E)
        for yi in range(3):
            torch.testing.assert_close(
                -m.free_energy(xs, torch.full((16,), yi)), logj[:, yi], rtol=1e-12, atol=1e-12
            )
        # exact log Z by summing over h (library) vs summing over x and y (brute force)
        torch.testing.assert_close(exact_log_z(m), torch.logsumexp(logj, (0, 1)))
        # E[h | x] = sum_y p(y|x) p(h|x, y)
        mh = sum(
            brute[:, yi : yi + 1] * m.hidden_probs(xs, torch.full((16,), yi)) for yi in range(3)
        )
        torch.testing.assert_close(m.marginal_hidden_probs(xs), mh)


def test_members_axis_matches_each_member():
    g = torch.Generator().manual_seed(3)
    m = ClassRBM(5, 4, 3, members=2, init_scale=0.5, generator=g, dtype=torch.float64)
    x = torch.rand(7, 5, generator=g, dtype=torch.float64)
    y = torch.randint(3, (7,), generator=g)
    with torch.no_grad():
        lp = m.log_proba(x)  # (2, 7, 3)
        grads = H.discriminative_gradient(x, y, m.W, m.c, m.U, m.d)
        for i in range(2):
            args = (m.W[i], m.c[i], m.U[i], m.d[i])
            torch.testing.assert_close(lp[i], H.log_proba(x, *args))
            gi = H.discriminative_gradient(x, y, *args)
            for k in H.PARAMS:
                torch.testing.assert_close(grads[k][i], gi[k])


def test_discriminative_gradient_matches_autograd_of_exact_log_likelihood():
    m = tiny(seed=1)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(9, 4, generator=g, dtype=torch.float64)
    y = torch.randint(3, (9,), generator=g)
    ll = m.log_proba(x).gather(-1, y.unsqueeze(-1)).mean()
    auto = dict(zip(H.PARAMS, torch.autograd.grad(ll, m.params(), allow_unused=True)))
    closed, logp = H.discriminative_gradient(
        x, y, *[p.detach() for p in (m.W, m.c, m.U, m.d)], return_log_proba=True
    )
    assert auto["b"] is None  # p(y|x) does not depend on b
    torch.testing.assert_close(closed["b"], torch.zeros(4, dtype=torch.float64))
    for k in ("W", "c", "U", "d"):
        torch.testing.assert_close(closed[k], auto[k], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(logp, m.log_proba(x).detach())
    # one-hot targets give the same gradient as integer labels
    closed1h = H.discriminative_gradient(x, F.one_hot(y, 3).double(), m.W, m.c, m.U, m.d)
    for k in H.PARAMS:
        torch.testing.assert_close(closed1h[k], closed[k])


def test_zero_gibbs_sweeps_have_no_mean_negatives():
    m = tiny(seed=1)
    x, y = toy_data(n=4, D=4, C=3, seed=1)
    with pytest.raises(ValueError, match=r"k=0 is invalid: .*negative_visible='mean'"):
        H.generative_gradient(x.double(), y, *m.params(), k=0, negative_visible="mean")
    H.generative_gradient(x.double(), y, *m.params(), k=0)  # sampled negatives: the data


def test_generative_statistics_give_the_exact_log_likelihood_gradient():
    """pos - E_model of joint_statistics equals autograd of mean log p(x, y) (exact log Z)."""
    m = tiny(seed=2)
    x, y = toy_data(n=8, D=4, C=3, seed=2)
    x = x.double()
    y1h = F.one_hot(y, 3).double()
    ll = (-m.free_energy(x, y) - exact_log_z(m)).mean()
    auto = dict(zip(H.PARAMS, torch.autograd.grad(ll, m.params())))
    with torch.no_grad():
        W, b, c, U, d = m.params()
        pos = H.joint_statistics(x, y1h, m.hidden_probs(x, y))
        xs = all_states(4).repeat_interleave(3, 0)  # every (x, y): (48, 4)
        ys = torch.eye(3, dtype=torch.float64).repeat(16, 1)  # (48, 3)
        p = torch.softmax(-H.joint_free_energy(xs, ys, W, b, c, U, d), 0)  # exact p(x, y)
        ph = m.hidden_probs(xs, ys)
        neg = {  # the model expectation of -dE/d theta, exactly
            "W": (xs * p[:, None]).T @ ph,
            "b": (xs * p[:, None]).sum(0),
            "c": (ph * p[:, None]).sum(0),
            "U": (ys * p[:, None]).T @ ph,
            "d": (ys * p[:, None]).sum(0),
        }
    for k in H.PARAMS:
        torch.testing.assert_close(pos[k] - neg[k], auto[k], rtol=1e-10, atol=1e-12)


def test_unlabeled_expected_positive_phase_is_gradient_of_free_energy_of_x():
    """With the negative phase removed, the 'expected' positive statistics are the exact
    gradient of log sum_y exp(-F(x, y)) (the unnormalized log p(x))."""
    m = tiny(seed=4)
    g = torch.Generator().manual_seed(4)
    x = torch.bernoulli(torch.full((6, 4), 0.5), generator=g).double()
    eye = torch.eye(3, dtype=torch.float64)
    logpx = torch.logsumexp(
        torch.stack([-m.free_energy(x, eye[i].expand(6, 3)) for i in range(3)], -1), -1
    ).mean()
    auto = dict(zip(H.PARAMS, torch.autograd.grad(logpx, m.params())))
    with torch.no_grad():
        # a chain that does not move cannot be forced, so compare pos - neg with neg computed
        # from the returned CD states
        grad, (xn, yn) = H.unlabeled_gradient(x, *m.params(), positive="expected", generator=g)
        ph = m.hidden_probs(xn, yn)
        neg = H.joint_statistics(xn, yn, ph)
    for k in H.PARAMS:
        torch.testing.assert_close(grad[k] + neg[k], auto[k], rtol=1e-10, atol=1e-12)


def test_sample_onehot_frequencies():
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.1, 0.6, 0.3], dtype=torch.float64).expand(20000, 3)
    s = H.sample_onehot(p, g)
    assert torch.all(s.sum(-1) == 1)
    torch.testing.assert_close(s.mean(0), p[0], atol=0.015, rtol=0)


# ----------------------------------------------------------------- training invariants


def _train(objective, alpha=0.01, seed=5, **kw):
    x, y = toy_data()
    g = torch.Generator().manual_seed(seed)
    m = ClassRBM(6, 5, 3, generator=g, dtype=torch.float64)
    hist = train_class_rbm(
        m, x, y, objective=objective, alpha=alpha, epochs=3, batch_size=16, lr=0.1,
        generator=g, **kw,
    )  # fmt: skip
    return m, hist


def test_alpha_zero_equals_discriminative_training():
    m0, _ = _train("hybrid", alpha=0.0, momentum=0.5)
    md, _ = _train("discriminative", momentum=0.5)
    m1, _ = _train("hybrid", alpha=0.5, momentum=0.5)
    for k in H.PARAMS:
        assert torch.equal(getattr(m0, k), getattr(md, k)), k
    assert not torch.equal(m1.W, md.W)


def test_semi_supervised_without_unlabeled_data_equals_supervised_hybrid():
    ms, hs = _train("hybrid", alpha=0.1)
    mu, hu = _train("hybrid", alpha=0.1, x_unlabeled=torch.empty(0, 6), beta=0.5)
    for k in H.PARAMS:
        assert torch.equal(getattr(ms, k), getattr(mu, k)), k
    assert hs.config["steps_per_epoch"] == hu.config["steps_per_epoch"] == 4
    # with unlabeled data the parameters change
    xu, _ = toy_data(n=40, seed=9)
    mx, hx = _train("hybrid", alpha=0.1, x_unlabeled=xu, beta=0.5)
    assert not torch.equal(mx.W, ms.W) and hx.config["steps_per_epoch"] == 4


def test_same_seed_same_model_and_pcd_runs():
    a, _ = _train("generative", method="pcd", k=2)
    b, hb = _train("generative", method="pcd", k=2)
    for k in H.PARAMS:
        assert torch.equal(getattr(a, k), getattr(b, k))
    assert len(hb.epochs) == 3 and hb.status == "done"


def test_discriminative_training_learns_and_restores_best_epoch():
    x, y = toy_data(n=90)
    g = torch.Generator().manual_seed(0)
    m = ClassRBM(6, 8, 3, generator=g, dtype=torch.float64)
    xv, yv = toy_data(n=60, seed=1)
    hist = train_class_rbm(
        m, x, y, objective="hybrid", alpha=0.05, epochs=15, batch_size=10, lr=0.2,
        momentum=0.5, valid=(xv, yv), early_stopping_patience=20, generator=g,
    )  # fmt: skip
    errs = [r["valid_error"] for r in hist.epochs]
    assert errs[-1] < 0.2 and hist.epochs[0]["train_loss"] > hist.epochs[-1]["train_loss"]
    best = hist.best_epoch
    with torch.no_grad():
        err = float((m.predict(xv.double()) != yv).double().mean())
    assert err == pytest.approx(errs[best - 1])


def test_deep_hybrid_single_stage_and_combinations():
    x, y = toy_data(n=90)
    xu, _ = toy_data(n=45, seed=3)
    g = torch.Generator().manual_seed(0)
    model = DeepHybridRBM([6, 8, 5], 3, generator=g, dtype=torch.float64)
    assert model.sizes == (6, 8, 5)
    before = [layer.W.clone() for layer in model.layers]
    hist = train_deep_hybrid(
        model, x, y, x_unlabeled=xu, beta=0.1, alpha=0.05, epochs=8, batch_size=15,
        lr=[0.2, 0.2], momentum=0.5, combine="mean", valid=(x, y), generator=g,
    )  # fmt: skip
    assert all(not torch.equal(b, layer.W) for b, layer in zip(before, model.layers))
    with torch.no_grad():
        ups = model.upward(x)
        assert [u.shape[-1] for u in ups] == [6, 8]
        lps = model.layer_log_proba(x)
        torch.testing.assert_close(model.log_proba(x, "top"), lps[-1])
        mean = torch.stack([lp.exp() for lp in lps]).mean(0).log()
        torch.testing.assert_close(model.log_proba(x, "mean"), mean)
        assert float((model.predict(x, "mean") != y).double().mean()) < 0.3
    assert hist.epochs[-1]["train_error"] < 0.3
    # a one-layer deep model is the single ClassRBM trainer
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    one = DeepHybridRBM([6, 5], 3, generator=g1, dtype=torch.float64)
    single = ClassRBM(6, 5, 3, generator=g2, dtype=torch.float64)
    kw = {"alpha": 0.1, "epochs": 2, "batch_size": 16, "lr": 0.1}
    train_deep_hybrid(one, x, y, generator=g1, **kw)
    train_class_rbm(single, x, y, generator=g2, **kw)
    assert torch.equal(one.layers[0].W, single.W)


def test_bad_values_raise():
    m = ClassRBM(6, 5, 3)
    x, y = toy_data()
    with pytest.raises(ValueError, match="objective"):
        train_class_rbm(m, x, y, objective="bayes")
    with pytest.raises(ValueError, match="alpha"):
        train_class_rbm(m, x, y, alpha=-1.0)
    with pytest.raises(ValueError, match=r"x\.shape"):
        train_class_rbm(m, x[:, :5], y)
    with pytest.raises(ValueError, match="labels"):
        train_class_rbm(m, x, y + 3)
    with pytest.raises(ValueError, match="unlabeled_positive"):
        train_class_rbm(m, x, y, unlabeled_positive="all")
    with pytest.raises(ValueError, match="n_classes"):
        ClassRBM(6, 5, 1)
    with pytest.raises(ValueError, match="hidden units"):
        exact_log_z(ClassRBM(3, 26, 2))  # well past 24: a default of 25 must not enumerate 2^25
    with pytest.raises(ValueError, match="combine"):
        DeepHybridRBM([6, 4], 3).log_proba(x.float(), "vote")


# ----------------------------------------------------------------- estimator


@pytest.mark.filterwarnings("ignore:smithing.pretrain.ClassificationRBM is deprecated")
def test_estimator_fit_predict_score_and_clone():
    x, y = toy_data(n=90)
    labels = np.array(["a", "b", "c"])[y.numpy()]
    est = ClassificationRBM(
        8, objective="hybrid", alpha=0.05, epochs=10, batch_size=10, lr=0.2, momentum=0.5,
        random_state=0,
    )  # fmt: skip
    est.fit(x.numpy(), labels, X_unlabeled=x.numpy()[:30])
    proba = est.predict_proba(x.numpy())
    assert proba.shape == (90, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert set(est.predict(x.numpy())) <= {"a", "b", "c"}
    assert est.score(x.numpy(), labels) > 0.8
    from sklearn.base import clone

    est2 = clone(est).fit(x.numpy(), labels, X_unlabeled=x.numpy()[:30])
    np.testing.assert_array_equal(est2.predict_proba(x.numpy()), proba)  # same seed, same model
    with pytest.raises(ValueError, match="not fitted"):
        ClassificationRBM().predict(x.numpy())
    with pytest.raises(ValueError, match="labels not seen"):
        clone(est).fit(x.numpy(), labels, X_valid=x.numpy(), y_valid=np.array(["z"] * 90))
