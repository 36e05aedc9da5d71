"""The batched ensemble: each member equals training that configuration alone."""

import functools
import math

import pytest
import torch
from torch.nn import functional as F

from smithing.data import load
from smithing.nn import MLP
from smithing.train import EarlyStopping, fit, seed_everything
from smithing.train.ensemble import MemberHooks, fit_ensemble


@pytest.fixture(scope="module")
def digits():
    return load("digits").subset(400)


def _models(seeds, act="tanh"):
    out = []
    for s in seeds:
        seed_everything(s)
        out.append(MLP(64, [24], 10, act))
    return out


@pytest.mark.parametrize(
    "optimizer,lrs",
    [
        ("sgd", [0.05, 0.1, 0.2]),
        ("momentum", [0.01, 0.05, 0.1]),
        ("nesterov", [0.01, 0.05, 0.1]),
        ("adagrad", [0.01, 0.05, 0.1]),
        ("rmsprop", [1e-3, 3e-3, 1e-2]),
        ("adam", [1e-3, 3e-3, 1e-2]),
        ("adadelta", [0.5, 1.0, 2.0]),
        ("adamw", [1e-3, 3e-3, 1e-2]),
    ],
)
def test_member_equals_training_alone(digits, optimizer, lrs):
    """Per-member seeds and learning rates, with early stopping: equal to separate runs."""
    seeds = [0, 1, 2]
    solo = []
    for model, s, lr in zip(_models(seeds), seeds, lrs):
        h = fit(
            model,
            digits,
            epochs=4,
            lr=lr,
            optimizer=optimizer,
            seed=s,
            schedule="cosine",
            early_stopping=EarlyStopping(patience=1),
        )
        solo.append((model, h))
    members = _models(seeds)
    hs = fit_ensemble(
        members,
        digits,
        seeds=seeds,
        lrs=lrs,
        epochs=4,
        optimizer=optimizer,
        schedule="cosine",
        early_stopping=lambda: EarlyStopping(patience=1),
    )
    for (m, h), me, he in zip(solo, members, hs):
        for p, q in zip(m.parameters(), me.parameters()):
            torch.testing.assert_close(p, q, atol=2e-5, rtol=1e-4)
        assert h.epochs_run == he.epochs_run and h.best_epoch == he.best_epoch
        assert h.curve("train_loss") == pytest.approx(he.curve("train_loss"), rel=1e-4)
        assert h.final["test_error"] == pytest.approx(he.final["test_error"], abs=1e-9)


def test_a_diverging_member_does_not_disturb_the_others(digits):
    seeds = [0, 1, 2]
    lrs = [0.05, 1e30, 0.1]  # the middle member explodes to inf/nan
    members = _models(seeds, act="relu")
    hs = fit_ensemble(members, digits, seeds=seeds, lrs=lrs, epochs=3, optimizer="sgd")
    assert hs[1].status == "diverged" and "epoch" in hs[1].message
    assert math.isnan(hs[1].final["test_error"])
    for i in (0, 2):
        alone = _models([seeds[i]], act="relu")[0]
        h = fit(alone, digits, epochs=3, lr=lrs[i], optimizer="sgd", seed=seeds[i])
        assert hs[i].status == "done"
        for p, q in zip(alone.parameters(), members[i].parameters()):
            torch.testing.assert_close(p, q, atol=2e-5, rtol=1e-4)
        assert h.final["test_error"] == pytest.approx(hs[i].final["test_error"])


def test_dropout_masks_differ_between_members(digits):
    seed_everything(0)
    m = MLP(64, [16], 10, "relu", dropout=0.5)
    members = [m, MLP(64, [16], 10, "relu", dropout=0.5)]
    members[1].load_state_dict(m.state_dict())  # identical weights and data order
    hs = fit_ensemble(members, digits, seeds=[0, 0], lrs=[0.1, 0.1], epochs=1)
    assert hs[0].curve("train_loss") != hs[1].curve("train_loss")


def test_bad_arguments(digits):
    with pytest.raises(ValueError, match="lrs"):
        fit_ensemble(_models([0, 1]), digits, seeds=[0, 1], lrs=[0.1], epochs=1)
    with pytest.raises(ValueError, match="architecture"):
        fit_ensemble(
            [MLP(64, [8], 10), MLP(64, [9], 10)], digits, seeds=[0, 1], lrs=[0.1, 0.1], epochs=1
        )


# ------------------------------------------------------------------ learning rates above 1


@pytest.mark.parametrize("lrs", [[0.05, 0.2, 0.5], [0.5, 2.0, 10.0]], ids=["small", "large"])
def test_large_per_member_lrs_are_as_exact_as_small_ones(digits, lrs):
    """No member's update is scaled up: lr 10 agrees with its separate run as well as lr 0.5."""
    seeds = [0, 1, 2]

    def softmax_regressions():
        out = []
        for s in seeds:
            seed_everything(s)
            out.append(MLP(64, [], 10))
        return out

    kw = dict(epochs=10, batch_size=10, optimizer="adadelta")
    solo = softmax_regressions()
    for model, s, lr in zip(solo, seeds, lrs):
        fit(model, digits, lr=lr, seed=s, final_eval=False, **kw)
    members = softmax_regressions()
    fit_ensemble(members, digits, seeds=seeds, lrs=lrs, final_eval=False, **kw)
    for model, member in zip(solo, members):
        for p, q in zip(model.parameters(), member.parameters()):
            # the small rates reach ~1e-6; rescaling lr = 10 up from lr = 1 gave ~2e-5
            torch.testing.assert_close(q, p, atol=2e-6, rtol=0)


def _register_sgd(monkeypatch, name, linear):
    from smithing import optim
    from smithing._registry import Entry

    def factory(params, lr):
        return torch.optim.SGD(params, lr=lr)

    monkeypatch.setitem(optim.OPTIMIZERS._entries, name, Entry(name, factory, "test SGD"))
    if linear:
        monkeypatch.setitem(optim._LR_LINEAR, name, True)


def test_an_optimizer_not_linear_in_lr_refuses_per_member_lrs(digits, monkeypatch):
    from smithing import optim

    _register_sgd(monkeypatch, "unflagged-sgd", linear=False)
    monkeypatch.setitem(optim._LR_LINEAR, "adam", False)
    for name in ("unflagged-sgd", "adam"):
        assert not optim.lr_scales_update(name)
        with pytest.raises(
            ValueError, match=r"lrs=\[0.01, 0.02\] is invalid: expected one learning"
        ):
            fit_ensemble(_models([0, 1]), digits, seeds=[0, 1], lrs=[0.01, 0.02], optimizer=name)
    # one learning rate for all: the optimizer runs at it, nothing is rescaled
    members = _models([0, 1])
    hs = fit_ensemble(members, digits, seeds=[0, 1], lrs=[1e-3, 1e-3], epochs=3, optimizer="adam")
    for model, s, member, he in zip(_models([0, 1]), [0, 1], members, hs):
        h = fit(model, digits, epochs=3, lr=1e-3, optimizer="adam", seed=s)
        for p, q in zip(model.parameters(), member.parameters()):
            torch.testing.assert_close(q, p, atol=2e-5, rtol=1e-4)
        assert he.curve("train_loss") == pytest.approx(h.curve("train_loss"), rel=1e-4)


# ------------------------------------------------------------------ what fit accepts


def test_loss_clip_norm_and_callbacks_equal_separate_fits(digits):
    seeds, lrs, clips = [0, 1, 2], [0.05, 0.1, 0.2], [0.5, 1.0, 0.25]
    loss = functools.partial(F.cross_entropy, label_smoothing=0.1)

    def cb(epoch, rec, model):  # sees the member's current weights; stops the fastest one
        rec["w_norm"] = float(model.net[1].weight.detach().norm())
        return epoch == 2 and rec["lr"] > 0.15

    kw = dict(epochs=4, optimizer="momentum", loss=loss, callbacks=[cb])
    solo = []
    for model, s, lr, c in zip(_models(seeds), seeds, lrs, clips):
        solo.append((model, fit(model, digits, lr=lr, seed=s, clip_norm=c, **kw)))
    members = _models(seeds)
    hs = fit_ensemble(members, digits, seeds=seeds, lrs=lrs, clip_norm=clips, **kw)
    for (model, h), member, he in zip(solo, members, hs):
        for p, q in zip(model.parameters(), member.parameters()):
            torch.testing.assert_close(q, p, atol=2e-5, rtol=1e-4)
        assert (he.stop_reason, he.epochs_run) == (h.stop_reason, h.epochs_run)
        assert he.curve("w_norm") == pytest.approx(h.curve("w_norm"), rel=1e-5)
        assert he.curve("train_loss") == pytest.approx(h.curve("train_loss"), rel=1e-4)
        assert he.curve("valid_loss") == pytest.approx(h.curve("valid_loss"), rel=1e-4)
    assert [h.stop_reason for h in hs] == ["max_epochs", "max_epochs", "callback"]
    # one radius for all members is a float
    members = _models(seeds)
    fit_ensemble(members, digits, seeds=seeds, lrs=lrs, epochs=1, clip_norm=0.5)
    with pytest.raises(ValueError, match="clip_norm"):
        fit_ensemble(_models(seeds), digits, seeds=seeds, lrs=lrs, epochs=1, clip_norm=[1.0, 2.0])


def _bn_models(seeds):
    out = []
    for s in seeds:
        seed_everything(s)
        out.append(
            torch.nn.Sequential(
                torch.nn.Linear(64, 16),
                torch.nn.BatchNorm1d(16),
                torch.nn.Tanh(),
                torch.nn.Linear(16, 10),
            )
        )
    return out


def _scripted_stoppers():
    """Member 0: best epoch 2, stops at 3 (best restored); member 1: improves every epoch;
    member 2: stops at epoch 2 and keeps its last weights (no restore)."""
    plans = [
        (lambda e: e <= 2, lambda e: e == 3, True),
        (lambda e: True, lambda e: False, True),
        (lambda e: True, lambda e: e == 2, False),
    ]
    made = []

    def factory():
        improved, stop, restore = plans[len(made) % len(plans)]
        es = EarlyStopping(patience=1, restore_best_weights=restore)
        es.update = lambda epoch, value, i=improved, s=stop: (i(epoch), s(epoch))
        made.append(es)
        return es

    return factory


def test_buffers_train_and_are_restored_like_fit(digits):
    """BatchNorm running statistics: trained per member, kept by a stopped member, restored
    with the best weights."""
    seeds, lrs = [0, 1, 2], [0.05, 0.1, 0.2]
    solo = []
    stoppers = _scripted_stoppers()
    for model, s, lr in zip(_bn_models(seeds), seeds, lrs):
        h = fit(model, digits, epochs=4, lr=lr, seed=s, early_stopping=stoppers())
        solo.append((model, h))
    members = _bn_models(seeds)
    hs = fit_ensemble(
        members, digits, seeds=seeds, lrs=lrs, epochs=4, early_stopping=_scripted_stoppers()
    )
    for (model, h), member, he in zip(solo, members, hs):
        a, b = model.state_dict(), member.state_dict()
        assert list(a) == list(b)
        for k in a:
            torch.testing.assert_close(b[k], a[k], atol=2e-5, rtol=1e-4, msg=k)
        assert (he.stop_reason, he.epochs_run) == (h.stop_reason, h.epochs_run)
        assert he.final["test_loss"] == pytest.approx(h.final["test_loss"], rel=1e-4)
    assert [h.epochs_run for h in hs] == [3, 4, 2]


# ------------------------------------------------------------------ a step that raises


def test_a_member_whose_step_raises_diverges_alone(digits, monkeypatch):
    """An optimizer refusing non-finite gradients, or a constraint's SVD of overflowed weights,
    raises inside the batched step: that member is diverged, the others equal their fits."""
    from smithing import optim
    from smithing._registry import Entry

    class CheckingSGD(torch.optim.SGD):
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
                        raise RuntimeError("non-finite gradient refused")
            return super().step(closure)

    def factory(params, lr):
        return CheckingSGD(params, lr=lr)

    monkeypatch.setitem(
        optim.OPTIMIZERS._entries, "checking-sgd", Entry("checking-sgd", factory, "")
    )
    monkeypatch.setitem(optim._LR_LINEAR, "checking-sgd", True)

    def svd_check(params, lrs):  # (members, out, in) -> one SVD per member
        for w in params.values():
            if w.ndim == 3:
                torch.linalg.svdvals(w)

    seeds, lrs = [0, 1, 2], [0.05, 1e10, 0.1]
    for case in ("optimizer", "constraint"):
        members = _models(seeds, act="linear")
        kw = dict(seeds=seeds, lrs=lrs, epochs=3)
        if case == "optimizer":
            hs = fit_ensemble(members, digits, optimizer="checking-sgd", **kw)
        else:
            hs = fit_ensemble(members, digits, regularizer=MemberHooks(after_step=svd_check), **kw)
        assert hs[1].status == "diverged" and hs[1].stop_reason == "diverged"
        assert "raised" in hs[1].message and "epoch 1" in hs[1].message
        assert math.isnan(hs[1].final["test_error"]) and hs[1].epochs_run == 1
        assert all(torch.isfinite(p).all() for p in members[1].parameters())
        for i in (0, 2):
            alone = _models([seeds[i]], act="linear")[0]
            h = fit(alone, digits, epochs=3, lr=lrs[i], seed=seeds[i])
            assert hs[i].status == "done" and hs[i].epochs_run == 3
            for p, q in zip(alone.parameters(), members[i].parameters()):
                torch.testing.assert_close(q, p, atol=2e-5, rtol=1e-4)
            assert hs[i].final["test_error"] == pytest.approx(h.final["test_error"])
