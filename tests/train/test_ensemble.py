"""The batched ensemble: each member equals training that configuration alone."""

import math

import pytest
import torch

from smithing.data import load
from smithing.nn import MLP
from smithing.train import EarlyStopping, fit, seed_everything
from smithing.train.ensemble import fit_ensemble


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
