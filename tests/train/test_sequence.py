"""smithing.train.sequence: the step-based trainer equals a hand-written loop, is reproducible,
clips, regularizes, records every ``eval_every`` steps and reports divergence."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from smithing.data import load
from smithing.data.base import Dataset, Split
from smithing.nn.rnn import RecurrentRegularizer, penalties, readout_from_config
from smithing.train import History, fit_sequence
from smithing.train.sequence import evaluate_split


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny recurrent steps only lose from intra-op threads (badly on a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _adding(n_train=64, n_test=32):
    return load("adding", T=5, n_train=n_train, n_valid=0, n_test=n_test, seed=0)


def _classes(n=48, T=4, seed=0):
    g = torch.Generator().manual_seed(seed)

    def split(m):
        return Split(torch.randn(m, T, 1, generator=g), torch.randint(0, 3, (m,), generator=g))

    return Dataset(
        "toy-sequences",
        split(n),
        split(16),
        split(16),
        task="classification",
        n_classes=3,
        input_shape=(T, 1),
    )


def _model(seed=0, **opts):
    cfg = {"hidden": 6, "activation": "relu", "init": "identity", **opts}
    return readout_from_config(cfg, 2, 1, "regression", seed=seed)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_equals_a_hand_written_loop():
    """SGD, clipping, the identity penalty and the spectral constraint, step for step."""
    data = _adding(n_train=40)
    opts = {"constraint": "spectral", "identity_penalty": 0.01, "input_std": 0.3}
    model = _model(**opts)
    hist = fit_sequence(
        model,
        data,
        steps=9,
        lr=0.05,
        batch_size=16,
        optimizer="sgd",
        clip_norm=0.5,
        eval_every=4,
        seed=3,
        regularizer=RecurrentRegularizer(),
    )
    ref = _model(**opts)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(3)
    perm, pos, losses, norms = torch.randperm(40, generator=gen), 0, [], []
    for _ in range(9):
        if pos + 16 > 40:  # a fresh permutation when a full batch no longer fits
            perm, pos = torch.randperm(40, generator=gen), 0
        idx = perm[pos : pos + 16]
        pos += 16
        loss = F.mse_loss(ref(data.train.x[idx]), data.train.y[idx])
        opt.zero_grad()
        (loss + penalties(ref)).backward()  # + lambda ||W_hh - I||_F^2
        norms.append(float(nn.utils.clip_grad_norm_(ref.parameters(), 0.5)))
        opt.step()
        ref.rnn.enforce_constraint()  # projected gradient descent
        losses.append(float(loss.detach()))
    for a, b in zip(_params(model), _params(ref), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    recs = hist.epochs
    assert [r["step"] for r in recs] == [0, 4, 8, 9]
    assert recs[1]["train_loss"] == pytest.approx(sum(losses[:4]) / 4, rel=1e-12)
    assert recs[3]["train_loss"] == pytest.approx(losses[8], rel=1e-12)
    assert recs[2]["grad_norm"] == pytest.approx(sum(norms[4:8]) / 4, rel=1e-6)
    assert recs[2]["clipped"] == sum(n > 0.5 for n in norms[4:8]) / 4
    with torch.no_grad():
        test_mse = float(F.mse_loss(ref(data.test.x), data.test.y))
    assert recs[-1]["test_mse"] == pytest.approx(test_mse, rel=1e-5)
    assert recs[-1]["test_loss"] == recs[-1]["test_mse"]


def test_same_seed_same_run_and_another_seed_another_order():
    data = _adding()

    def run(seed):
        model = _model()
        hist = fit_sequence(model, data, steps=12, lr=3e-3, batch_size=16, eval_every=4, seed=seed)
        return hist, _params(model)

    (h1, p1), (h2, p2), (h3, _) = run(0), run(0), run(1)
    assert h1.epochs == h2.epochs  # bitwise on CPU
    assert all(torch.equal(a, b) for a, b in zip(p1, p2, strict=True))
    assert h3.epochs[-1]["train_loss"] != h1.epochs[-1]["train_loss"]


def test_history_format():
    data = _adding()
    calls = []
    hist = fit_sequence(
        _model(), data, steps=7, batch_size=16, eval_every=3, progress=lambda s, r: calls.append(s)
    )
    assert isinstance(hist, History)
    assert hist.status == "done" and hist.stop_reason == "max_steps" and hist.message == ""
    assert [r["step"] for r in hist.epochs] == calls == [0, 3, 6, 7]
    assert set(hist.epochs[0]) == {"step", "test_loss", "test_mse"}  # before training
    assert set(hist.epochs[1]) == {
        "step",
        "train_loss",
        "grad_norm",
        "clipped",
        "test_loss",
        "test_mse",
    }
    assert hist.final == {k: v for k, v in hist.epochs[-1].items() if k != "step"}
    assert hist.config["steps"] == 7 and hist.seconds > 0
    only = fit_sequence(_model(), data, steps=0)
    assert [r["step"] for r in only.epochs] == [0]


def test_classification_records_errors():
    data = _classes()
    model = readout_from_config({"hidden": 5}, 1, 3, "classification", seed=0)
    hist = fit_sequence(model, data, steps=6, lr=1e-2, batch_size=8, eval_every=3)
    last = hist.epochs[-1]
    for split in ("valid", "test"):
        ev = evaluate_split(model, data.split(split), "classification", batch_size=5)
        assert last[f"{split}_loss"] == pytest.approx(ev["loss"], rel=1e-6)
        assert last[f"{split}_error"] == ev["error"]  # the recorded error is this split's
        with torch.no_grad():
            out = model(data.split(split).x)
        want = float(F.cross_entropy(out, data.split(split).y))
        assert ev["loss"] == pytest.approx(want, rel=1e-5)
        assert ev["error"] == float((out.argmax(-1) != data.split(split).y).float().mean())


def test_clipping_bounds_the_step():
    data = _adding()
    model = _model(input_std=0.5)
    before = torch.cat([p.reshape(-1) for p in _params(model)])
    hist = fit_sequence(
        model, data, steps=1, lr=1.0, batch_size=16, optimizer="sgd", clip_norm=1e-3
    )
    after = torch.cat([p.reshape(-1) for p in _params(model)])
    assert hist.epochs[-1]["grad_norm"] > 1e-3 and hist.epochs[-1]["clipped"] == 1.0
    assert float((after - before).norm()) == pytest.approx(1e-3, rel=1e-3)  # lr * c
    free = _model(input_std=0.5)
    fit_sequence(free, data, steps=1, lr=1.0, batch_size=16, optimizer="sgd", clip_norm=None)
    moved = torch.cat([p.reshape(-1) for p in _params(free)]) - before
    assert float(moved.norm()) == pytest.approx(hist.epochs[-1]["grad_norm"], rel=1e-5)


def test_ready_optimizer_custom_loss_and_callbacks():
    data = _adding()
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    seen = []

    def stop_at_4(step, rec, m):
        seen.append(step)
        return step >= 4

    hist = fit_sequence(
        model,
        data,
        steps=20,
        optimizer=opt,
        loss=lambda out, y: 2 * F.mse_loss(out, y),
        batch_size=16,
        eval_every=2,
        callbacks=[stop_at_4],
    )
    assert hist.stop_reason == "callback" and seen == [2, 4]
    assert hist.epochs[-1]["step"] == 4 and opt.state  # the given optimizer did the steps
    first = hist.epochs[0]
    assert first["test_loss"] == pytest.approx(2 * first["test_mse"], rel=1e-6)


def test_divergence_is_reported_not_raised():
    data = _adding()
    hist = fit_sequence(
        _model(input_std=0.5),
        data,
        steps=30,
        lr=1e6,
        batch_size=16,
        optimizer="sgd",
        clip_norm=None,
    )
    assert hist.status == "diverged" and hist.stop_reason == "diverged"
    assert "non-finite training loss at step" in hist.message
    assert hist.epochs[-1]["step"] < 30


def test_learns_the_short_adding_problem():
    data = load("adding", T=5, n_train=256, n_valid=0, n_test=128, seed=0)
    model = _model(hidden=16)
    hist = fit_sequence(model, data, steps=150, lr=3e-3, eval_every=50)
    assert hist.status == "done"
    assert hist.epochs[-1]["test_mse"] < 0.7 / 6  # T = 5 is easy: well below the baseline 1/6


def test_validation_messages():
    data = _adding()
    with pytest.raises(ValueError, match="steps=-1 is invalid: expected a non-negative int"):
        fit_sequence(_model(), data, steps=-1)
    with pytest.raises(ValueError, match="eval_every=0 is invalid"):
        fit_sequence(_model(), data, steps=1, eval_every=0)
    with pytest.raises(ValueError, match="clip_norm=0 is invalid"):
        fit_sequence(_model(), data, steps=1, clip_norm=0)
    with pytest.raises(ValueError, match="batch_size=0 is invalid"):
        fit_sequence(_model(), data, steps=1, batch_size=0)
