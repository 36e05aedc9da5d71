import math

import pytest
import torch

from smithing.data import load
from smithing.nn import MLP
from smithing.train import EarlyStopping, fit, seed_everything
from smithing.train.history import STOP_REASONS
from smithing.train.loop import evaluate


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def _model(seed=0, act="tanh"):
    seed_everything(seed)
    return MLP(64, [32], 10, act)


def test_fit_learns_digits(digits):
    m = _model()
    h = fit(m, digits, epochs=8, lr=0.1, optimizer="momentum", seed=0)
    assert h.status == "done" and h.epochs_run == 8
    assert h.final["test_error"] < 0.1
    assert h.epochs[0]["valid_error"] > h.epochs[-1]["valid_error"]
    # final metrics are those of the weights the model holds
    assert h.final["test_error"] == pytest.approx(evaluate(m, digits.test)[1])


def test_same_seed_same_numbers_bitwise(digits):
    a, b = _model(), _model()
    ha = fit(a, digits, epochs=3, lr=0.05, seed=7)
    hb = fit(b, digits, epochs=3, lr=0.05, seed=7)
    assert ha.curve("train_loss") == hb.curve("train_loss")
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_divergence_is_a_status_not_an_exception(digits):
    m = _model(act="linear")
    h = fit(m, digits, epochs=5, lr=1e10, seed=0)
    assert h.status == "diverged" and h.stop_reason == "diverged"
    assert "epoch" in h.message
    assert math.isnan(h.final["test_error"])


def test_inputs_not_mutated(digits):
    before = digits.train.x.clone()
    fit(_model(), digits, epochs=1, lr=0.1)
    assert torch.equal(before, digits.train.x)


@pytest.mark.parametrize(
    "bad,match",
    [({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_arguments(digits, bad, match):
    kw = {"epochs": 1, "lr": 0.1, "batch_size": 8} | bad
    with pytest.raises(ValueError, match=match):
        fit(_model(), digits, **kw)


class _Boom(Exception):
    pass


@pytest.mark.parametrize("ended_by", ["patience", "max_epochs", "divergence", "exception"])
def test_early_stopping_always_restores_best_weights(digits, ended_by):
    """Whatever ends training, the model ends with the best epoch's weights."""
    m = _model()
    snapshots = {}
    vals = {
        "patience": [1.0, 0.5, 0.7, 0.8, 0.9, 0.95],
        "max_epochs": [1.0, 0.5, 0.6],
        "divergence": [1.0, 0.5, 0.6],
        "exception": [1.0, 0.5, 0.6],
    }[ended_by]

    def cb(epoch, rec, model):
        snapshots[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        rec["valid_loss_fake"] = vals[epoch - 1]
        if ended_by == "divergence" and epoch == 3:
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(float("nan"))
        if ended_by == "exception" and epoch == 3:
            raise _Boom()

    es = EarlyStopping(monitor="valid_loss", patience=2)
    # monitor a scripted metric through a subclass to control which epoch is best
    orig_update = es.update
    es.update = lambda epoch, value: orig_update(epoch, vals[epoch - 1])
    epochs = len(vals) if ended_by != "divergence" else 5
    if ended_by == "exception":
        with pytest.raises(_Boom):
            fit(m, digits, epochs=epochs, lr=0.1, seed=0, early_stopping=es, callbacks=[cb])
        h = None
    else:
        h = fit(m, digits, epochs=epochs, lr=0.1, seed=0, early_stopping=es, callbacks=[cb])
    for k, v in m.state_dict().items():
        assert torch.equal(v, snapshots[2][k]), k
    if h is not None:
        assert h.best_epoch == 2
        assert (
            h.stop_reason
            == {"patience": "patience", "max_epochs": "max_epochs", "divergence": "diverged"}[
                ended_by
            ]
        )
        assert math.isfinite(h.final["test_error"])


def test_theano_patience_rule():
    es = EarlyStopping(patience=2, improvement_threshold=0.995)
    # a significant improvement at epoch 2 raises the budget to 4 epochs
    assert es.update(1, 1.0) == (True, False)
    assert es.update(2, 0.5) == (True, False)
    assert es.budget == 4
    assert es.update(3, 0.499) == (True, False)  # not significant: budget stays
    assert es.budget == 4
    assert es.update(4, 0.6) == (False, True)  # the budget is spent at epoch 4
    es2 = EarlyStopping(patience=2, improvement_threshold=0.995)
    for epoch, v in enumerate([1.0, 0.9, 0.8], start=1):
        es2.update(epoch, v)
    assert es2.budget == 6  # significant improvement at epoch 3: max(2, 2 * 3)


def test_early_stopping_validation():
    with pytest.raises(ValueError, match="monitor"):
        EarlyStopping(monitor="nope")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)


def _updates(es, values):
    return [es.update(epoch, v) for epoch, v in enumerate(values, start=1)]


def test_patience_zero_stops_at_the_first_epoch_without_improvement(digits):
    """Keras' meaning: an improving epoch never stops; patience=0 stops at the first epoch
    that does not improve (so 0 and 1 coincide), patience=k after k such epochs in a row."""
    values = [1.0, 0.9, 0.8, 0.85, 0.7]
    expected = [(True, False), (True, False), (True, False), (False, True), (True, False)]
    assert _updates(EarlyStopping(patience=0), values) == expected
    assert _updates(EarlyStopping(patience=1), values) == expected
    stops = [
        stop for _, stop in _updates(EarlyStopping(patience=2), [1.0, 0.9, 0.95, 0.8, 0.85, 0.9])
    ]
    assert stops == [False, False, False, False, False, True]
    # through fit: the training loss falls every epoch, so patience 0 never stops it
    h = fit(
        _model(),
        digits,
        epochs=4,
        lr=0.01,
        seed=0,
        early_stopping=EarlyStopping(monitor="train_loss", patience=0),
    )
    assert h.stop_reason == "max_epochs" and h.epochs_run == 4 and h.best_epoch == 4


def test_a_callback_that_stops_training_is_reported_as_callback(digits):
    assert "callback" in STOP_REASONS and "patience" in STOP_REASONS
    h = fit(_model(), digits, epochs=5, lr=0.05, seed=0, callbacks=[lambda e, rec, m: e == 2])
    assert h.status == "done" and h.stop_reason == "callback" and h.epochs_run == 2
    assert not h.stopped_early and h.summary()["stop_reason"] == "callback"
    # early stopping and a callback ending the same epoch: early stopping's reason
    es = EarlyStopping(patience=0)
    es.update = lambda epoch, value: (epoch == 1, epoch == 2)
    h = fit(_model(), digits, epochs=5, lr=0.05, early_stopping=es, callbacks=[lambda *a: True])
    assert h.stop_reason == "callback" and h.epochs_run == 1
    h = fit(
        _model(), digits, epochs=5, lr=0.05, early_stopping=es, callbacks=[lambda e, r, m: e == 2]
    )
    assert h.stop_reason == "patience" and h.epochs_run == 2 and h.stopped_early


class _CheckingSGD(torch.optim.SGD):
    """SGD that refuses a non-finite gradient with a RuntimeError (as checking optimizers do)."""

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
                    raise RuntimeError("non-finite gradient refused")
        return super().step(closure)


class _SpectralCheck:
    """A constraint that takes an SVD of every weight after each step (raises on NaN/inf)."""

    def after_step(self, model, lr):
        for lin in model.linears:
            torch.linalg.svdvals(lin.weight)


def test_an_overflowing_step_that_raises_ends_the_run_as_diverged(digits):
    m = _model(act="linear")
    h = fit(m, digits, epochs=3, lr=1e10, seed=0, optimizer=_CheckingSGD(m.parameters(), lr=1e10))
    assert h.status == "diverged" and h.stop_reason == "diverged"
    assert "RuntimeError" in h.message and "non-finite gradient refused" in h.message
    assert "epoch 1" in h.message and h.epochs_run == 1
    assert math.isnan(h.epochs[0]["train_loss"]) and math.isnan(h.final["test_error"])
    # a step that makes the parameters non-finite, found by a constraint's SVD
    h = fit(_model(act="linear"), digits, epochs=3, lr=1e10, seed=0, regularizer=_SpectralCheck())
    assert h.status == "diverged" and "epoch 1" in h.message
    assert "non-finite" in h.message and "converge" in h.message  # torch's LinAlgError text


def test_a_runtime_error_with_finite_numbers_is_raised(digits):
    class Broken:
        def after_step(self, model, lr):
            raise RuntimeError("a bug, not an overflow")

    with pytest.raises(RuntimeError, match="a bug, not an overflow"):
        fit(_model(), digits, epochs=1, lr=0.1, regularizer=Broken())
