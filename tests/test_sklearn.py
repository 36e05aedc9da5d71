"""smithing.sklearn: scikit-learn's own estimator checks on every estimator, pipelines, grid
search, seeds, partial_fit / warm_start, and each estimator's defining trick against sklearn,
a float64 transcription or an exact answer."""

from __future__ import annotations

import doctest
import itertools
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import smithing.sklearn as sk
from smithing.sklearn import (
    RBM,
    ClassRBMClassifier,
    DBNClassifier,
    DenoisingAutoencoder,
    MLPClassifier,
    MLPRegressor,
    SdAClassifier,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: small settings so that the checks run fast; everything else at its default
CHECKED = [
    MLPClassifier((16,), learning_rate_init=0.01, max_iter=50),
    MLPRegressor((16,), learning_rate_init=0.01, max_iter=50),
    MLPClassifier(
        (16,),
        learning_rate_init=0.05,
        max_iter=50,
        early_stopping=True,
        l2=1e-3,
        max_norm=3.0,
        dropout=0.1,
        clip_norm=5.0,
        init="glorot_uniform",
    ),  # fmt: skip
    RBM(n_components=8, n_iter=3),
    RBM(n_components=6, n_iter=2, visible="gaussian", method="cd", k=2),
    DenoisingAutoencoder(n_components=8, n_iter=3),
    DBNClassifier((16,), pretrain_epochs=2, learning_rate_init=0.01, max_iter=50),
    SdAClassifier((16,), pretrain_epochs=2, learning_rate_init=0.01, max_iter=50),
    ClassRBMClassifier(n_components=16, n_iter=10),
]

#: scikit-learn exempts its own semi-supervised classifiers (LabelPropagation, LabelSpreading,
#: SelfTrainingClassifier), by name, from this check's labels -1 / 1: -1 means "unlabeled".
SEMI_SUPERVISED_XFAIL = {
    "check_classifiers_classes": (
        "labels -1 / 1: -1 marks unlabeled examples (scikit-learn's semi-supervised "
        "convention; the check exempts scikit-learn's semi-supervised classifiers by name)"
    )
}


def _expected_failures(estimator):
    return SEMI_SUPERVISED_XFAIL if isinstance(estimator, ClassRBMClassifier) else {}


@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_the_public_api_is_complete_and_every_estimator_is_checked():
    from sklearn.base import BaseEstimator

    public = {n for n in dir(sk) if isinstance(getattr(sk, n), type)}
    estimators = {n for n in public if issubclass(getattr(sk, n), BaseEstimator)}
    assert estimators <= set(sk.__all__)
    assert {type(e).__name__ for e in CHECKED} == estimators


def test_docstring_examples_run():
    import smithing.sklearn.autoencoder
    import smithing.sklearn.class_rbm
    import smithing.sklearn.mlp
    import smithing.sklearn.rbm
    import smithing.sklearn.stacks

    for mod in (
        smithing.sklearn.mlp,
        smithing.sklearn.rbm,
        smithing.sklearn.autoencoder,
        smithing.sklearn.stacks,
        smithing.sklearn.class_rbm,
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            failed, tried = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert tried > 0, mod.__name__
        assert failed == 0, mod.__name__


# ------------------------------------------------------------------ pipelines and searches


def _digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def test_rbm_logistic_pipeline_is_a_drop_in_for_bernoulli_rbm():
    from sklearn.neural_network import BernoulliRBM

    X, y = _digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    params = {"n_components": 64, "learning_rate": 0.06, "batch_size": 10, "n_iter": 5}
    scores, pipes = {}, {}
    for name, rbm in (("ours", RBM(**params, random_state=0)),
                      ("sklearn", BernoulliRBM(**params, random_state=0))):  # fmt: skip
        pipe = Pipeline([("rbm", rbm), ("logistic", LogisticRegression(C=100, max_iter=500))])
        scores[name], pipes[name] = pipe.fit(Xtr, ytr).score(Xte, yte), pipe
    assert scores["ours"] > 0.85, scores
    assert scores["ours"] > scores["sklearn"] - 0.05, scores
    ours = pipes["ours"].named_steps["rbm"]
    assert ours.components_.shape == (64, 64)
    assert ours.intercept_hidden_.shape == (64,) and ours.intercept_visible_.shape == (64,)


def test_grid_search_over_mlp_classifier():
    X, y = _digits()
    grid = GridSearchCV(
        MLPClassifier(max_iter=30, batch_size=32, random_state=0, device="cpu"),
        {"hidden_layer_sizes": [(16,), (64,)], "learning_rate_init": [1e-3, 1e-2]},
        cv=2,
    )
    grid.fit(X[:600], y[:600])
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_params_ in grid.cv_results_["params"]
    assert grid.best_score_ > 0.85
    assert grid.best_estimator_.score(X[600:], y[600:]) > 0.85


# ------------------------------------------------------------------ seeds, partial_fit, warm_start

SEEDED = [
    MLPClassifier((16,), max_iter=5, dropout=0.2, device="cpu"),
    MLPRegressor((16,), max_iter=5, device="cpu"),
    RBM(n_components=8, n_iter=2, device="cpu"),
    DenoisingAutoencoder(n_components=8, n_iter=2, device="cpu"),
    DBNClassifier((8,), pretrain_epochs=1, max_iter=3, device="cpu"),
    SdAClassifier((8,), pretrain_epochs=1, max_iter=3, device="cpu"),
    ClassRBMClassifier(n_components=8, n_iter=2, device="cpu"),
]


def _output(est, X):
    if hasattr(est, "predict_proba"):
        return est.predict_proba(X)
    if hasattr(est, "transform"):
        return est.transform(X)
    return est.predict(X)


@pytest.mark.parametrize("est", SEEDED, ids=lambda e: type(e).__name__)
def test_same_seed_same_model_other_seed_other_model(est):
    X, y = _digits()
    X, y = X[:200], y[:200]
    target = X[:, 10] if isinstance(est, MLPRegressor) else y
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = clone(est).set_params(random_state=3).fit(X, target)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's generator untouched
    b = clone(est).set_params(random_state=3).fit(X, target)
    c = clone(est).set_params(random_state=4).fit(X, target)
    np.testing.assert_array_equal(_output(a, X), _output(b, X))
    assert not np.array_equal(_output(a, X), _output(c, X))


def test_mlp_partial_fit_continues_one_epoch_at_a_time():
    X, y = _digits()
    clf = MLPClassifier((32,), learning_rate_init=0.01, batch_size=10, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clone(clf).partial_fit(X[:100], y[:100])
    for i in range(0, 1000, 100):
        clf.partial_fit(X[i : i + 100], y[i : i + 100], classes=np.arange(10))
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 10 and clf.t_ == 1000
    opt = clf._optimizer
    clf.partial_fit(X[:100], y[:100])
    assert clf._optimizer is opt  # Adam's moments carry over between calls
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(X[1000:], y[1000:]) > 0.8
    reg = MLPRegressor((8,), random_state=0, device="cpu")
    reg.partial_fit(X[:100], X[:100, 10]).partial_fit(X[100:200], X[100:200, 10])
    assert reg.n_iter_ == 2


def test_rbm_partial_fit_keeps_its_chains():
    X, _ = _digits()
    rbm = RBM(n_components=16, batch_size=10, random_state=0, device="cpu")
    rbm.partial_fit(X[:10])
    chains, W0 = rbm._chains, rbm.components_.copy()
    assert chains.updates == 1  # one batch: one update, as scikit-learn's partial_fit
    rbm.partial_fit(X[10:20])
    assert rbm._chains is chains and chains.updates == 2
    assert rbm.n_iter_ == 2 and not np.array_equal(W0, rbm.components_)
    cd = RBM(n_components=16, batch_size=10, method="cd", k=3, random_state=0).fit(X[:100])
    assert cd._chains.updates == 0  # CD restarts its chains at the data: no persistent chain
    pcd = clone(cd).set_params(method="pcd").fit(X[:100])
    assert pcd._chains.updates == 100 and not np.array_equal(cd.components_, pcd.components_)


def test_denoising_autoencoder_partial_fit_keeps_its_optimizer():
    X, _ = _digits()
    X = X / 16.0
    dae = DenoisingAutoencoder(
        n_components=16, optimizer="momentum", batch_size=20, random_state=0, device="cpu"
    )
    dae.partial_fit(X[:200])
    opt = dae._optimizer
    buffers = [opt.state[p]["momentum_buffer"].clone() for p in dae.autoencoder_.parameters()]
    assert all(b.abs().sum() > 0 for b in buffers)  # the momentum built up in call 1 ...
    dae.partial_fit(X[200:400])
    assert dae._optimizer is opt and dae.n_iter_ == 2  # ... is the one call 2 continues
    losses = [dae.partial_fit(X[:400]).history_["recon_loss"][-1] for _ in range(5)]
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="features"):
        dae.partial_fit(X[:10, :20])
    dae.fit(X[:200])  # fit: a fresh optimizer, not the stream's
    assert dae._optimizer is None


def test_class_rbm_partial_fit_streams_labeled_and_unlabeled_chunks():
    X, y = _binary_problem(n=600)
    clf = ClassRBMClassifier(n_components=16, learning_rate=0.1, batch_size=10, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clone(clf).partial_fit(X[:50], y[:50])
    y_semi = np.where(np.arange(600) % 2 == 0, -1, y)  # every other row unlabeled
    only_zeros = np.flatnonzero(y == 0)[:40]
    clf.partial_fit(X[only_zeros], y[only_zeros], classes=[0, 1])  # a chunk with one class
    assert clf.classes_.tolist() == [0, 1] and clf.n_iter_ == 1
    for _ in range(4):  # 4 passes over a stream of two chunks ...
        for i in (0, 250):
            clf.partial_fit(X[i : i + 250], y_semi[i : i + 250])
    assert clf.n_iter_ == 9
    full = clone(clf).set_params(n_iter=4).fit(X[:500], y_semi[:500])  # ... vs 4 epochs of fit
    assert full.score(X[500:], y[500:]) > 0.9
    assert clf.score(X[500:], y[500:]) > full.score(X[500:], y[500:]) - 0.03
    with pytest.raises(ValueError, match=r"labels \[7\] not in classes_"):
        clf.partial_fit(X[:3], np.array([0, 1, 7]))
    with pytest.raises(ValueError, match="no labeled row"):
        clf.partial_fit(X[:3], np.array([-1, -1, -1]))
    with pytest.raises(ValueError, match="at least 2 labeled classes"):
        clone(clf).partial_fit(X[:3], y[:3], classes=[1])


def test_the_old_classification_rbm_is_deprecated_for_the_sklearn_estimator():
    from smithing.pretrain import ClassificationRBM

    with pytest.warns(DeprecationWarning, match="smithing.sklearn.ClassRBMClassifier"):
        ClassificationRBM(8)


def test_warm_start_continues_where_fit_stopped():
    X, y = _digits()
    cold = MLPClassifier((32,), learning_rate_init=0.01, max_iter=5, random_state=0)
    cold.fit(X, y)
    warm = clone(cold).set_params(warm_start=True).fit(X, y)
    first = warm.model_
    warm.fit(X, y)
    assert warm.model_ is first and warm.n_iter_ == 10 and len(warm.loss_curve_) == 10
    assert warm.loss_curve_[5] < cold.loss_curve_[0]  # epoch 6 starts from trained weights
    rbm = RBM(n_components=8, n_iter=2, warm_start=True, random_state=0).fit(X)
    rbm.fit(X)
    assert rbm.n_iter_ == 4
    crbm = ClassRBMClassifier(n_components=8, n_iter=2, warm_start=True, random_state=0)
    crbm.fit(X, y).fit(X, y)
    assert crbm.n_iter_ == 4


# ------------------------------------------------------------------ semi-supervised


def _binary_problem(n=300, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(2, size=n)
    X = (rng.rand(n, 12) < np.where(y[:, None] == 1, 0.75, 0.25)).astype(float)
    return X, y


def test_class_rbm_semi_supervised_takes_minus_one_as_unlabeled(monkeypatch):
    import smithing.sklearn.class_rbm as mod

    X, y = _binary_problem()
    y_semi = y.copy()
    y_semi[::3] = -1
    seen = {}
    real = mod.train_class_rbm

    def spy(model, x, yy, **kw):
        seen.update(x=x, y=yy, x_unlabeled=kw["x_unlabeled"], beta=kw["beta"])
        return real(model, x, yy, **kw)

    monkeypatch.setattr(mod, "train_class_rbm", spy)
    clf = ClassRBMClassifier(n_components=16, n_iter=30, learning_rate=0.1, beta=0.5,
                             random_state=0)  # fmt: skip
    clf.fit(X, y_semi)
    assert clf.classes_.tolist() == [0, 1]
    labeled = y_semi != -1
    np.testing.assert_array_equal(seen["x"].numpy(), X[labeled])
    np.testing.assert_array_equal(seen["y"].numpy(), y[labeled])
    np.testing.assert_array_equal(seen["x_unlabeled"].numpy(), X[~labeled])
    assert seen["beta"] == 0.5
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="at least 2 labeled classes"):
        ClassRBMClassifier(n_iter=1).fit(X, np.where(y == 0, -1, 1))


@pytest.mark.parametrize("objective", ["generative", "discriminative", "hybrid"])
def test_class_rbm_objectives_learn_and_predict_the_exact_posterior(objective):
    X, y = _binary_problem()
    clf = ClassRBMClassifier(n_components=4, n_iter=15, objective=objective, random_state=0)
    clf.fit(X, y)
    assert clf.score(X, y) > 0.85
    # p(y | x) by brute force over the 2^4 hidden states, float64
    m = clf.model_
    W, b, c, U, d = (t.detach().double().numpy() for t in (m.W, m.b, m.c, m.U, m.d))
    hs = np.array(list(itertools.product([0, 1], repeat=4)), dtype=float)  # (16, H)
    # -E(y, x, h) = h.(W^T x) + b.x + c.h + d_y + h.U_y, summed over h
    neg_e = (X @ W)[:, None, None, :] * hs[None, None] + (X @ b)[:, None, None, None]
    neg_e = neg_e.sum(-1) + (hs @ c)[None, None] + d[None, :, None] + (U @ hs.T)[None]
    log_joint = np.logaddexp.reduce(neg_e, axis=-1)  # (n, C)
    expected = np.exp(log_joint - np.logaddexp.reduce(log_joint, axis=-1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------ the RBM's defining tricks


def _tiny_rbm(nv=6, nh=4, seed=0, **kw):
    rng = np.random.RandomState(seed)
    X = (rng.rand(80, nv) > 0.5).astype(float)
    return RBM(n_components=nh, n_iter=5, learning_rate=0.1, random_state=seed, **kw).fit(X), X


def test_rbm_pseudo_likelihood_is_sklearns_formula_on_the_same_weights():
    from sklearn.neural_network import BernoulliRBM

    X, _ = _digits()
    Xb = (X > 0.5).astype(np.float64)
    ours = RBM(n_components=32, n_iter=2, random_state=7, device="cpu").fit(Xb)
    ref = BernoulliRBM(n_components=32, random_state=7)
    ref.components_ = ours.components_
    ref.intercept_hidden_ = ours.intercept_hidden_
    ref.intercept_visible_ = ours.intercept_visible_
    ref.n_features_in_ = Xb.shape[1]
    np.testing.assert_allclose(ours.pseudo_likelihood(Xb), ref.score_samples(Xb), rtol=1e-12)


def test_rbm_exact_score_samples_is_brute_force_enumeration():
    rbm, X = _tiny_rbm()
    W, b, c = rbm.components_.T, rbm.intercept_visible_, rbm.intercept_hidden_
    vs = np.array(list(itertools.product([0, 1], repeat=6)), dtype=float)
    hs = np.array(list(itertools.product([0, 1], repeat=4)), dtype=float)
    neg_e = vs @ W @ hs.T + (vs @ b)[:, None] + (hs @ c)[None]  # -E(v, h), (64, 16)
    log_pv = np.logaddexp.reduce(neg_e, axis=1)
    log_pv -= np.logaddexp.reduce(log_pv)  # normalized: log p(v) for all 2^6 v
    idx = (X @ (2 ** np.arange(6)[::-1])).astype(int)
    np.testing.assert_allclose(rbm.score_samples(X), log_pv[idx], rtol=1e-10)
    np.testing.assert_allclose(np.logaddexp.reduce(rbm.score_samples(vs)), 0.0, atol=1e-10)


def test_rbm_ais_agrees_with_the_exact_log_likelihood():
    rbm, X = _tiny_rbm(nv=12, nh=10, seed=1)
    exact = rbm.score_samples(X)
    ais = clone(rbm).set_params(exact_max_units=0, ais_betas=3000)
    ais.rbm_, ais._log_z = rbm.rbm_, {}  # the same weights, log Z by AIS
    ais.n_features_in_, ais.device_, ais._dtype = 12, rbm.device_, rbm._dtype
    ais._visible_mean = rbm._visible_mean
    assert not ais._enumerable()
    np.testing.assert_allclose(ais.score_samples(X), exact, atol=0.05)


def test_gaussian_rbm_density_integrates_to_one():
    rng = np.random.RandomState(0)
    X = rng.randn(200, 1)
    rbm = RBM(n_components=3, visible="gaussian", n_iter=5, learning_rate=0.05, random_state=0)
    rbm.fit(X)
    grid = np.linspace(-12, 12, 20001)[:, None]
    dens = np.exp(rbm.score_samples(grid))
    assert np.trapezoid(dens, grid[:, 0]) == pytest.approx(1.0, abs=1e-6)
    c, W = rbm.intercept_hidden_, rbm.components_.T
    np.testing.assert_allclose(rbm.transform(X), 1 / (1 + np.exp(-(X @ W + c))), rtol=1e-10)
    with pytest.raises(ValueError, match="binary visibles"):
        rbm.pseudo_likelihood(X)


def test_rbm_transform_is_the_hidden_probabilities_in_the_inputs_dtype():
    rbm, X = _tiny_rbm()
    W, c = rbm.components_.T, rbm.intercept_hidden_
    np.testing.assert_allclose(rbm.transform(X), 1 / (1 + np.exp(-(X @ W + c))), rtol=1e-12)
    rbm32 = RBM(n_components=4, n_iter=1, random_state=0).fit(X.astype(np.float32))
    assert rbm32.transform(X.astype(np.float32)).dtype == np.float32
    assert rbm32.get_feature_names_out().tolist() == ["rbm0", "rbm1", "rbm2", "rbm3"]


# ------------------------------------------------------------------ the other defining tricks


def test_denoising_autoencoder_corrupts_inputs_and_reconstructs_the_clean_ones():
    rng = np.random.RandomState(0)
    means = np.linspace(0.2, 0.8, 10)
    X = (rng.rand(400, 10) < means).astype(float)
    # masking every input: the encoder sees only zeros, so its codes are one constant vector,
    # and the best the decoder can do is the clean inputs' mean (a target of the corrupted
    # input would drive it to 0)
    dae = DenoisingAutoencoder(n_components=4, corruption="masking", corruption_rate=1.0,
                               n_iter=60, learning_rate=0.5, random_state=0)  # fmt: skip
    dae.fit(X)
    recon = dae.inverse_transform(dae.transform(np.zeros((1, 10))))  # what training saw
    np.testing.assert_allclose(recon[0], X.mean(0), atol=0.06)  # SGD noise
    clean = clone(dae).set_params(corruption_rate=0.0).fit(X)
    assert np.ptp(clean.transform(X), axis=0).max() > 0.1  # uncorrupted: codes vary
    with pytest.raises(ValueError, match="probability"):
        clone(dae).set_params(corruption_rate=1.5).fit(X)


def test_mlp_early_stopping_restores_the_best_epochs_weights():
    X, y = _digits()
    est = MLPClassifier((32,), learning_rate_init=0.05, max_iter=60, early_stopping=True,
                        n_iter_no_change=3, random_state=0, device="cpu")  # fmt: skip
    est.fit(X, y)
    best = est.history_.best_epoch
    losses = [r["valid_loss"] for r in est.history_.epochs]
    assert best == int(np.argmin(losses)) + 1 and est.n_iter_ > best
    assert len(est.validation_scores_) == est.n_iter_
    # the same seed for exactly `best` epochs: the weights the early-stopped run restored
    short = clone(est).set_params(max_iter=best, n_iter_no_change=1000).fit(X, y)
    for p, q in zip(est.model_.parameters(), short.model_.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_mlp_tricks_reach_the_network():
    X, y = _digits()
    est = MLPClassifier((64,), learning_rate_init=0.05, max_iter=5, max_norm=0.5, dropout=0.3,
                        random_state=0, device="cpu").fit(X, y)  # fmt: skip
    W = est.model_.linears[0].weight.detach()
    assert float(W.norm(dim=1).max()) <= 0.5 + 1e-5
    free = clone(est).set_params(max_norm=None).fit(X, y)
    assert float(free.model_.linears[0].weight.detach().norm(dim=1).max()) > 0.5
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.3 for m in est.model_.modules())
    # an initializer by name, seen before training moves it (lr tiny, one epoch)
    ortho = MLPClassifier((32,), init="orthogonal", optimizer="sgd", learning_rate_init=1e-12,
                          max_iter=1, random_state=0).fit(X, y)  # fmt: skip
    W = ortho.model_.linears[0].weight.detach().double()  # (32, 64): orthonormal rows
    torch.testing.assert_close(W @ W.T, torch.eye(32, dtype=torch.float64), atol=1e-6, rtol=0)
    dc = MLPClassifier((16,), dropconnect=0.5, max_iter=2, random_state=0).fit(X, y)
    assert type(dc.model_.linears[0]).__name__ == "DropConnectHidden"


@pytest.mark.parametrize("cls", [DBNClassifier, SdAClassifier])
def test_stack_classifiers_start_fine_tuning_from_the_pretrained_stack(cls):
    X, y = _digits()
    est = cls((32, 16), pretrain_epochs=2, optimizer="sgd", learning_rate_init=1e-12,
              max_iter=1, random_state=0, device="cpu").fit(X, y)  # fmt: skip
    assert est.model_.sizes == (64, 32, 16, 10) and est.model_.activation == "sigmoid"
    for (W, b), layer in zip(est.stack_.encoders(), est.model_.linears[:2]):
        torch.testing.assert_close(layer.weight.detach(), W, atol=1e-9, rtol=0)
        torch.testing.assert_close(layer.bias.detach(), b, atol=1e-9, rtol=0)
    raw = clone(est).set_params(pretrain_epochs=0).fit(X, y)
    W0 = raw.stack_.encoders()[0][0]
    assert not torch.allclose(W0, est.stack_.encoders()[0][0])  # pretraining moved them
    good = clone(est).set_params(learning_rate_init=0.01, optimizer="adam", max_iter=20).fit(X, y)
    assert good.score(X, y) > 0.9


def test_bad_parameters_raise_clear_errors():
    X, y = _digits()
    with pytest.raises(InvalidParameterError, match="optimizer"):
        MLPClassifier(optimizer="sgdd").fit(X, y)
    with pytest.raises(InvalidParameterError, match="init"):
        MLPClassifier(init="xavier").fit(X, y)
    with pytest.raises(InvalidParameterError, match="method"):
        RBM(method="cd-1").fit(X)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(16, 0)).fit(X, y)
    with pytest.raises(ValueError, match="device"):
        MLPClassifier(device="tpu", max_iter=1).fit(X, y)


@pytest.mark.gpu
def test_device_auto_trains_on_cuda():
    X, y = _digits()
    clf = MLPClassifier((32,), max_iter=3, random_state=0).fit(X, y)
    assert clf.device_.type == "cuda" and next(clf.model_.parameters()).is_cuda
    rbm = RBM(n_components=16, n_iter=1, random_state=0).fit(X)
    assert rbm.rbm_.W.is_cuda and rbm.transform(X).shape == (len(X), 16)
    cpu = clone(clf).set_params(device="cpu").fit(X, y)
    assert abs(cpu.score(X, y) - clf.score(X, y)) < 0.05
