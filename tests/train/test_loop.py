import math

import pytest
import torch

from smithing.data import load
from smithing.nn import MLP
from smithing.train import EarlyStopping, fit, seed_everything
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
