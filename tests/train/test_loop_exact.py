"""Exact answers for ``fit`` and its helpers on tiny float64 problems, the records it writes,
the invalid inputs with their full messages, and the documented edge cases.

Written for the mutation score of ``smithing.train.loop`` (issue 15): a linear regression on
five examples is trained by ``fit`` and by a float64 transcription of mini-batch SGD written out
here (the same ``randperm`` data order, hand-derived gradients of the mean squared error), and
every record, the config, the final metrics and the checkpoint's signature are checked.
"""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest
import torch
from tiny_regression import (
    FINAL_KEYS,
    Counting,
    D,
    assert_records,
    assert_weights,
    linear,
    mse,
    regression,
    transcription,
)
from torch import nn
from torch.nn import functional as F

from checkpoint_tools import Recording
from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer
from smithing.checkpoint.files import read_checkpoint
from smithing.data.base import Dataset, Split
from smithing.train.diagnostics import NonFiniteGradientWarning
from smithing.train.loop import (
    batch_error,
    default_loss,
    evaluate,
    final_metrics,
    fit,
    nonfinite_state,
    seed_everything,
    step_raised,
)


# ---------------------------------------------------------------- the helpers
def test_seed_everything_seeds_python_numpy_and_torch():
    seed_everything(7)
    a = (random.random(), float(np.random.rand()), float(torch.rand(())))
    seed_everything(7)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == a
    assert a[0] == random.Random(7).random()
    assert a[1] == float(np.random.RandomState(7).rand())
    assert a[2] == float(torch.rand((), generator=torch.Generator().manual_seed(7)))
    # NumPy takes the seed modulo 2**32 (its seeds are 32-bit); Python and torch take it whole
    big = 2**32 + 100
    seed_everything(big)
    got = (random.random(), float(np.random.rand()), float(torch.rand(())))
    assert got[0] == random.Random(big).random()
    assert got[1] == float(np.random.RandomState(100).rand())
    assert got[2] == float(torch.rand((), generator=torch.Generator().manual_seed(big)))


def test_default_loss_and_batch_error_exact():
    assert default_loss("classification") is F.cross_entropy
    mse_loss = default_loss("regression")
    out = torch.tensor([[1.0], [2.0], [4.0]], dtype=D)  # (n, 1) against (n,) targets
    y = torch.tensor([0.0, 2.0, 2.0], dtype=D)
    assert float(mse_loss(out, y)) == pytest.approx(5.0 / 3.0, rel=1e-15)
    assert float(batch_error(out, y, "regression")) == 5.0  # summed squared error
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [0.0, 5.0, 1.0], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2])
    err = batch_error(logits, labels, "classification")
    assert err.dtype == torch.int64 and int(err) == 2  # rows 1 and 3 are wrong


class Fixed(nn.Module):
    """Outputs ``x`` itself: the loss and error are the data's."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x


@pytest.mark.parametrize("batch_size", [1, 2, 3, 4096])
@pytest.mark.parametrize("training", [True, False])
def test_evaluate_weights_uneven_batches_and_restores_the_mode(batch_size, training):
    # five examples, three classes; predictions 0, 1, 2, 2, 0 against labels 0, 1, 1, 2, 2
    logits = torch.tensor(
        [[3.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0], [0, 0, 4.0], [1.0, 0, 0]], dtype=torch.float32
    )
    labels = torch.tensor([0, 1, 1, 2, 2])
    m = Fixed().train(training)
    loss, err = evaluate(m, Split(logits, labels), batch_size=batch_size)
    assert m.training is training
    assert err == pytest.approx(2 / 5, rel=1e-15)
    want = float(F.cross_entropy(logits.double(), labels))
    assert loss == pytest.approx(want, rel=1e-6)
    # a regression split, with a custom loss (the sum, so the weighting is visible)
    out = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=D)
    y = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0], dtype=D)
    loss, err = evaluate(Fixed(), Split(out, y), "regression", batch_size=batch_size)
    assert err == pytest.approx(30 / 5, rel=1e-15)  # 0 + 1 + 4 + 9 + 16
    assert loss == pytest.approx(30 / 5, rel=1e-15)
    loss, _ = evaluate(
        Fixed(), Split(out, y), "regression", loss_fn=lambda o, t: (o - t).abs().max(),
        batch_size=batch_size,
    )  # fmt: skip
    # the mean over batches of the batch loss, weighted by the batch's size
    maxes = [float((out[i : i + batch_size] - 1).max()) * len(out[i : i + batch_size])
             for i in range(0, 5, batch_size)]  # fmt: skip
    assert loss == pytest.approx(sum(maxes) / 5, rel=1e-15)


def test_evaluate_does_not_track_gradients():
    seen = []

    class Spy(Fixed):
        def forward(self, x):
            seen.append(torch.is_grad_enabled())
            return x * self.p

    evaluate(Spy(), Split(torch.ones(3, 2), torch.zeros(3, dtype=torch.int64)))
    assert seen == [False]


def test_nonfinite_state_messages():
    m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    assert nonfinite_state(m) is None and nonfinite_state(m, torch.tensor(1.0)) is None
    assert nonfinite_state(m, torch.tensor([math.nan, 1.0])) == "the loss is nan"
    assert nonfinite_state(m, torch.tensor(-math.inf, requires_grad=True)) == "the loss is -inf"
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    assert nonfinite_state(m) is None
    m[0].bias.grad[1] = math.inf
    m[1].weight.grad[0, 0] = math.nan
    assert nonfinite_state(m) == "non-finite gradient in 0.bias, 1.weight"
    # the loss is named before the gradients, the gradients before the parameters
    assert nonfinite_state(m, torch.tensor(math.inf)) == "the loss is inf"
    with torch.no_grad():
        m[0].weight[1, 1] = math.nan
        m[1].bias[0] = -math.inf
    assert nonfinite_state(m) == "non-finite gradient in 0.bias, 1.weight"
    for p in m.parameters():
        p.grad = None
    assert nonfinite_state(m) == "non-finite parameters in 0.weight, 1.bias"


def test_step_raised_message():
    err = RuntimeError("  first line\nsecond line  ")
    assert step_raised(err, 3, 7, "the loss is nan") == (
        "the training step raised RuntimeError (first line) in epoch 3, batch 7: the loss is nan"
    )
    assert step_raised(FloatingPointError("   "), 1, 2, "x") == (
        "the training step raised FloatingPointError (no message) in epoch 1, batch 2: x"
    )


def test_final_metrics_of_usable_and_unusable_weights():
    data = regression()
    m = linear()
    usable = final_metrics(m, data, default_loss("regression"))
    assert list(usable) == FINAL_KEYS
    w, b = torch.tensor([0.3, -0.1], dtype=D), torch.tensor(0.2, dtype=D)
    for name in ("train", "valid", "test"):
        want = mse(w, b, data.split(name))
        assert usable[f"{name}_loss"] == pytest.approx(want, rel=1e-12)
        assert usable[f"{name}_error"] == pytest.approx(want, rel=1e-12)
    unusable = final_metrics(m, data, default_loss("regression"), usable=False)
    assert list(unusable) == FINAL_KEYS and all(math.isnan(v) for v in unusable.values())


# ---------------------------------------------------------------- fit, exactly
@pytest.mark.parametrize("batch_size", [2, 5, 7])
def test_fit_sgd_equals_the_float64_transcription(batch_size):
    data = regression()
    m = linear()
    h = fit(m, data, epochs=3, lr=0.1, batch_size=batch_size, seed=4)
    w, b, recs = transcription(data, epochs=3, lr=0.1, batch_size=batch_size, seed=4)
    assert_weights(m, w, b)
    assert_records(h, recs)
    assert (h.status, h.stop_reason, h.message, h.best_epoch) == ("done", "max_epochs", "", 3)
    assert h.config == {"epochs": 3, "lr": 0.1, "batch_size": batch_size, "seed": 4}
    assert list(h.final) == FINAL_KEYS
    for name in ("train", "valid", "test"):
        want = mse(w, b, data.split(name))
        assert h.final[f"{name}_loss"] == pytest.approx(want, rel=1e-12)
        assert h.final[f"{name}_error"] == pytest.approx(want, rel=1e-12)
    assert 0 <= h.seconds < 60


def test_fit_shuffle_false_visits_the_stored_order():
    data = regression()
    m = linear()
    h = fit(m, data, epochs=2, lr=0.1, batch_size=2, seed=4, shuffle=False)
    w, b, recs = transcription(data, epochs=2, lr=0.1, batch_size=2, seed=4, shuffle=False)
    assert_weights(m, w, b)
    assert_records(h, recs)
    # and the shuffled run is another one
    w2, _, _ = transcription(data, epochs=2, lr=0.1, batch_size=2, seed=4)
    assert not torch.allclose(w, w2)


def test_fit_schedules_scale_the_rate_per_epoch():
    data = regression()

    def halving(epoch):
        return 0.5**epoch

    m = linear()
    h = fit(m, data, epochs=3, lr=0.2, batch_size=2, seed=1, schedule=halving)
    w, b, recs = transcription(data, epochs=3, lr=0.2, batch_size=2, seed=1, factor=halving)
    assert [r["lr"] for r in h.epochs] == [0.2, 0.1, 0.05]
    assert_weights(m, w, b)
    assert_records(h, recs)
    # "constant" and None: no schedule at all
    for schedule in ("constant", None):
        m = linear()
        h = fit(m, data, epochs=2, lr=0.2, batch_size=2, seed=1, schedule=schedule)
        assert [r["lr"] for r in h.epochs] == [0.2, 0.2]
    # a named schedule with its options (step: x gamma every step_size epochs)
    m = linear()
    h = fit(m, data, epochs=3, lr=0.2, batch_size=2, seed=1, schedule="step",
            schedule_options={"step_size": 1, "gamma": 0.5})  # fmt: skip
    assert [r["lr"] for r in h.epochs] == pytest.approx([0.2, 0.1, 0.05], rel=1e-15)
    assert_weights(m, w, b)


def test_fit_clip_norm_clips_each_step():
    data = regression()
    m = linear()
    fit(m, data, epochs=2, lr=0.1, batch_size=2, seed=0, clip_norm=0.05)
    w, b, _ = transcription(data, epochs=2, lr=0.1, batch_size=2, seed=0, clip=0.05)
    assert_weights(m, w, b)
    w_free, _, _ = transcription(data, epochs=2, lr=0.1, batch_size=2, seed=0)
    assert not torch.allclose(w, w_free)


class RecordingL2:
    """A penalty ``c |w|^2`` and hooks that record the rate they get and the grad mode."""

    def __init__(self, c):
        self.c, self.calls = c, []

    def penalty(self, model):
        return self.c * (model.weight**2).sum()

    def before_step(self, model, lr):
        self.calls.append(("before", lr, torch.is_grad_enabled()))

    def after_step(self, model, lr):
        self.calls.append(("after", lr, torch.is_grad_enabled()))


def test_fit_regularizer_penalty_and_hooks():
    data = regression()
    m = linear()
    reg = RecordingL2(0.3)
    h = fit(m, data, epochs=2, lr=0.1, batch_size=3, seed=2, regularizer=reg,
            schedule=lambda e: [1.0, 0.5, 0.25][e])  # fmt: skip
    w, b, recs = transcription(data, epochs=2, lr=0.1, batch_size=3, seed=2, l2=0.3,
                               factor=lambda e: [1.0, 0.5, 0.25][e])  # fmt: skip
    assert_weights(m, w, b)
    assert_records(h, recs)  # the recorded training loss is the data loss, without the penalty
    # two steps an epoch, each before then after the optimizer step, without gradients
    want = [("before", 0.1, False), ("after", 0.1, False)] * 2
    want += [("before", 0.05, False), ("after", 0.05, False)] * 2
    assert reg.calls == want
    # a list of regularizers is their sum (penalties) and sequence (hooks)
    m = linear()
    a, c = RecordingL2(0.1), RecordingL2(0.2)
    fit(m, data, epochs=2, lr=0.1, batch_size=3, seed=2, regularizer=[a, c],
        schedule=lambda e: [1.0, 0.5, 0.25][e])  # fmt: skip
    assert_weights(m, w, b)
    assert a.calls == c.calls == want


def test_fit_eval_train_progress_and_final_eval():
    data = regression()
    m = linear()
    seen = []
    h = fit(m, data, epochs=2, lr=0.1, batch_size=2, seed=3, eval_train=True,
            progress=lambda e, rec: seen.append((e, dict(rec))), final_eval=False)  # fmt: skip
    ws = []
    for epochs in (1, 2):
        w, b, _ = transcription(data, epochs=epochs, lr=0.1, batch_size=2, seed=3)
        ws.append((w, b))
    assert [e for e, _ in seen] == [1, 2]
    for (_, rec), got, (w, b) in zip(seen, h.epochs, ws):
        assert rec == got  # the record itself, complete when progress sees it
        assert rec["train_eval_loss"] == pytest.approx(mse(w, b, data.train), rel=1e-12)
        assert rec["train_error"] == pytest.approx(mse(w, b, data.train), rel=1e-12)
    assert h.final == {} and h.best_epoch == 2 and h.seconds >= 0
    h = fit(linear(), data, epochs=1, lr=0.1, batch_size=2)
    assert "train_eval_loss" not in h.epochs[0] and "train_error" not in h.epochs[0]


# ---------------------------------------------------------------- invalid inputs
BAD = [
    ({"epochs": 0}, "epochs=0 is invalid: expected a positive int"),
    ({"epochs": 2.0}, "epochs=2.0 is invalid: expected a positive int"),
    ({"batch_size": 0}, "batch_size=0 is invalid: expected a positive int"),
    ({"batch_size": 1.0}, "batch_size=1.0 is invalid: expected a positive int"),
    ({"lr": 0}, "lr=0 is invalid: expected a positive number"),
    ({"lr": -0.1}, "lr=-0.1 is invalid: expected a positive number"),
    ({"lr": math.inf}, "lr=inf is invalid: expected a positive number"),
    ({"lr": math.nan}, "lr=nan is invalid: expected a positive number"),
    ({"lr": "0.1"}, "lr='0.1' is invalid: expected a positive number"),
    (
        {"early_stopping": EarlyStopping(monitor="recon_loss")},
        "early_stopping.monitor='recon_loss' is invalid: expected one of ('valid_loss', "
        "'valid_error', 'train_loss') (what fit records)",
    ),
]


@pytest.mark.parametrize("bad,message", BAD)
def test_fit_refuses_invalid_inputs_with_their_messages(bad, message):
    kw = {"epochs": 1, "lr": 0.1, "batch_size": 2} | bad
    with pytest.raises(ValueError) as info:
        fit(linear(), regression(), **kw)
    assert str(info.value) == message


def test_fit_accepts_an_int_rate_and_batch_larger_than_the_data():
    h = fit(linear(), regression(), epochs=1, lr=1, batch_size=100, final_eval=False)
    assert h.status == "done" and h.epochs[0]["lr"] == 1


# ---------------------------------------------------------------- how runs end
def test_a_loss_that_becomes_nan_is_reported_with_its_epoch():
    data = regression()
    h = fit(linear(), data, epochs=5, lr=1e200, batch_size=1, seed=0)
    assert (h.status, h.stop_reason) == ("diverged", "diverged")
    epoch = h.epochs_run
    assert re.fullmatch(rf"training loss became (nan|inf) in epoch {epoch}", h.message)
    assert math.isnan(h.epochs[-1]["train_loss"]) or math.isinf(h.epochs[-1]["train_loss"])
    assert set(h.epochs[-1]) == {"epoch", "train_loss", "lr", "seconds"}
    assert 0 <= h.epochs[-1]["seconds"] < 60
    assert h.best_epoch is None
    assert list(h.final) == FINAL_KEYS and all(math.isnan(v) for v in h.final.values())


def test_a_validation_loss_that_is_inf_is_reported():
    data = regression()
    vx = data.valid.x.clone()
    vx[0, 0] = math.inf
    bad = Dataset("tiny", data.train, Split(vx, data.valid.y), data.test, task="regression")
    seen = []
    h = fit(linear(), bad, epochs=3, lr=0.1, batch_size=2, progress=lambda e, r: seen.append(e))
    assert (h.status, h.stop_reason) == ("diverged", "diverged")
    assert h.message == "validation loss became inf in epoch 1"
    assert h.epochs_run == 1 and seen == [1]  # progress still sees the epoch
    assert math.isfinite(h.epochs[0]["train_loss"]) and h.epochs[0]["valid_loss"] == math.inf


class RaisingSGD(torch.optim.SGD):
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if not bool(torch.isfinite(p.grad).all()):
                    raise FloatingPointError("refused\nmore")
        return super().step(closure)


def test_a_step_that_raises_on_nonfinite_numbers_names_epoch_batch_and_why():
    data = regression()
    x = data.train.x.clone()
    x[3, 1] = math.inf  # the gradient of the batch holding example 3 is non-finite
    bad = Dataset("tiny", Split(x, data.train.y), data.valid, data.test, task="regression")
    m = linear()
    h = fit(m, bad, epochs=2, lr=0.1, batch_size=1, seed=0, shuffle=False,
            optimizer=RaisingSGD(m.parameters(), lr=0.1))  # fmt: skip
    assert (h.status, h.stop_reason) == ("diverged", "diverged")
    assert h.message == (
        "the training step raised FloatingPointError (refused) in epoch 1, batch 4: the loss is inf"
    )
    assert h.epochs_run == 1 and math.isnan(h.epochs[0]["train_loss"])


def test_callbacks_all_run_and_any_stops():
    data = regression()
    calls = []

    def first(epoch, rec, model):
        calls.append(("first", epoch))
        return epoch == 2

    def second(epoch, rec, model):
        calls.append(("second", epoch))
        return None

    h = fit(linear(), data, epochs=4, lr=0.1, batch_size=2, callbacks=[first, second])
    assert calls == [("first", 1), ("second", 1), ("first", 2), ("second", 2)]
    assert (h.stop_reason, h.epochs_run, h.best_epoch) == ("callback", 2, 2)


def test_early_stopping_restores_the_best_epoch_and_rewinds_the_schedule_not():
    data = regression()
    vals = iter([3.0, 1.0, 2.0, 2.5, 2.7])
    es = EarlyStopping(patience=2)
    orig = es.update
    es.update = lambda epoch, value: orig(epoch, next(vals))
    m = linear()
    h = fit(m, data, epochs=5, lr=0.1, batch_size=2, seed=5, early_stopping=es)
    assert (h.stop_reason, h.epochs_run, h.best_epoch) == ("patience", 4, 2)
    w, b, _ = transcription(data, epochs=2, lr=0.1, batch_size=2, seed=5)
    assert_weights(m, w, b)  # the weights of epoch 2
    for name in ("train", "valid", "test"):
        assert h.final[f"{name}_loss"] == pytest.approx(mse(w, b, data.split(name)), rel=1e-12)
    # without restore_best_weights, the last weights stay
    vals = iter([3.0, 1.0, 2.0, 2.5, 2.7])
    es = EarlyStopping(patience=2, restore_best_weights=False)
    orig2 = es.update
    es.update = lambda epoch, value: orig2(epoch, next(vals))
    m = linear()
    h = fit(m, data, epochs=5, lr=0.1, batch_size=2, seed=5, early_stopping=es)
    w, b, _ = transcription(data, epochs=4, lr=0.1, batch_size=2, seed=5)
    assert_weights(m, w, b)
    assert h.best_epoch == 2


def test_early_stopping_is_reset_and_sees_the_monitored_value():
    data = regression()
    es = EarlyStopping(monitor="train_loss", patience=1)
    es.update(1, -1.0)  # a stale best from an earlier run: reset by fit
    seen = []
    orig = es.update

    def update(epoch, value):
        seen.append(value)
        return orig(epoch, value)

    es.update = update
    h = fit(linear(), data, epochs=2, lr=0.1, batch_size=2, seed=5, early_stopping=es)
    assert seen == [r["train_loss"] for r in h.epochs]
    assert h.best_epoch == 2 and h.stop_reason == "max_epochs"


# ---------------------------------------------------------------- the checkpoint's signature
def test_the_checkpoint_signature_holds_every_setting(tmp_path):
    data = regression()
    ck = Checkpointer(tmp_path / "c.ckpt", min_interval_s=0)
    fit(linear(), data, epochs=2, lr=0.1, batch_size=2, seed=3, checkpoint=ck,
        optimizer="momentum", optimizer_options={"momentum": 0.5},
        regularizer=RecordingL2(0.1))  # fmt: skip
    state = read_checkpoint(ck.path)
    assert state["trainer"] == "fit"
    assert state["signature"] == {
        "epochs": 2,
        "lr": 0.1,
        "batch_size": 2,
        "seed": 3,
        "n_train": 5,
        "optimizer": "momentum",
        "optimizer_options": "{'momentum': 0.5}",
        "schedule": None,
        "schedule_options": "{}",
        "parameters": [["weight", [1, 2]], ["bias", [1]]],
        "stateful": [],
    }
    ck = Checkpointer(tmp_path / "d.ckpt", min_interval_s=0)
    m = linear()

    def halving(epoch):
        return 0.5**epoch

    fit(m, data, epochs=1, lr=0.1, batch_size=2, checkpoint=ck, shuffle=False,
        optimizer=torch.optim.SGD(m.parameters(), lr=0.1), schedule=halving,
        precision="bf16")  # fmt: skip
    sig = read_checkpoint(ck.path)["signature"]
    assert sig["optimizer"] == "SGD" and sig["optimizer_options"] == "{}"
    assert sig["schedule"].endswith("halving") and sig["precision"] == "bf16"
    assert sig["shuffle"] is False


def test_batch_error_counts_over_the_last_axis():
    logits = torch.zeros(2, 3, 4)
    logits[0, :, 1] = 1.0  # row 0: class 1 at every position
    logits[1, :, 3] = 1.0  # row 1: class 3
    labels = torch.tensor([[1, 1, 0], [3, 2, 3]])
    assert int(batch_error(logits, labels, "classification")) == 2


def test_fit_defaults():
    """epochs 20, lr 0.1, batch_size 32 (the whole tiny set), seed 0, SGD, shuffled."""
    data = regression(x_scale=0.5)
    m = linear()
    h = fit(m, data)
    assert h.config == {"epochs": 20, "lr": 0.1, "batch_size": 32, "seed": 0}
    w, b, recs = transcription(data, epochs=20, lr=0.1, batch_size=32, seed=0)
    assert_weights(m, w, b)
    assert_records(h, recs)
    assert list(h.final) == FINAL_KEYS


def test_a_custom_loss_is_the_loss_of_every_record_and_of_the_final_metrics():
    data = regression()

    def tenth(out, y):
        return 0.1 * ((out.reshape(y.shape) - y) ** 2).mean()

    m = linear()
    h = fit(m, data, epochs=2, lr=0.3, batch_size=2, seed=1, loss=tenth)
    w, b, recs = transcription(data, epochs=2, lr=0.3, batch_size=2, seed=1, scale=0.1)
    assert_weights(m, w, b)
    assert_records(h, recs)
    for name in ("train", "valid", "test"):
        want = mse(w, b, data.split(name))
        assert h.final[f"{name}_loss"] == pytest.approx(0.1 * want, rel=1e-12)
        assert h.final[f"{name}_error"] == pytest.approx(want, rel=1e-12)


def test_clip_norm_warns_on_a_nonfinite_gradient_and_the_run_diverges():
    """Example 3 (input 1e250, weight 0, residual 1e100): a finite loss, an overflowing
    gradient. fit's clipping warns (it does not raise), the step makes the weights non-finite,
    and the run ends as diverged."""
    data = regression()
    x, y = data.train.x.clone(), data.train.y.clone()
    x[3], y[3] = torch.tensor([1e250, 0.0], dtype=D), -1e100
    big = Dataset("tiny", Split(x, y), data.valid, data.test, task="regression")
    with pytest.warns(NonFiniteGradientWarning):
        h = fit(linear(w=(0.0, -0.1)), big, epochs=2, lr=0.1, batch_size=5, clip_norm=1.0)
    assert h.status == "diverged" and h.message == "validation loss became inf in epoch 1"


def test_a_model_without_parameters_trains_on_the_cpu():
    """The default device is the model's, or the CPU for a module without parameters (here
    one whose only trainable number is outside it, in a ready optimizer)."""
    data = regression()
    offset = torch.zeros((), dtype=D, requires_grad=True)

    class Shifted(nn.Module):
        def forward(self, x):
            return x.sum(-1) + offset

    opt = torch.optim.SGD([offset], lr=0.1)
    h = fit(Shifted(), data, epochs=1, lr=0.1, batch_size=5, optimizer=opt)
    assert h.status == "done"
    want = -0.1 * 2 * float((data.train.x.sum(-1) - data.train.y).mean())
    assert float(offset.detach()) == pytest.approx(want, rel=1e-12)


class Spy(nn.Module):
    """A float32 linear model that records, per training forward pass, whether bf16 autocast
    is on and the float32 matmul precision in force."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(
                (torch.is_autocast_enabled("cpu"), torch.get_float32_matmul_precision())
            )
        return self.lin(x)


@pytest.mark.parametrize(
    "precision,inside",
    [("fp32", (False, "highest")), ("tf32", (False, "high")), ("bf16", (True, "highest"))],
)
def test_precision_autocasts_the_forward_and_sets_matmuls_only_inside(precision, inside):
    data = regression()
    f32 = Dataset("tiny32", *(Split(s.x.float(), s.y.float()) for s in (data.train, data.valid,
                  data.test)), task="regression")  # fmt: skip
    before = torch.get_float32_matmul_precision()
    assert before == "highest"
    m = Spy()
    h = fit(m, f32, epochs=1, lr=0.1, batch_size=2, precision=precision)
    assert h.status == "done" and m.seen == [inside] * 3
    assert torch.get_float32_matmul_precision() == before  # restored


def test_compile_compiles_the_forward_and_loss_for_the_device(monkeypatch):
    import smithing.train.loop as loop

    compiled = []

    def fake_compile_step(fn, device):
        compiled.append(device)
        return fn

    monkeypatch.setattr(loop, "compile_step", fake_compile_step)
    data = regression()
    for flag in (False, None):
        fit(linear(), data, epochs=1, lr=0.1, batch_size=2, compile=flag)
    assert compiled == []
    m = linear()
    h = fit(m, data, epochs=2, lr=0.1, batch_size=2, seed=3, compile=True)
    assert compiled == [torch.device("cpu")]
    w, b, recs = transcription(data, epochs=2, lr=0.1, batch_size=2, seed=3)
    assert_weights(m, w, b)
    assert_records(h, recs)


def test_a_constant_schedule_is_no_scheduler_in_the_checkpoint(tmp_path):
    data = regression()
    for schedule, options in (("constant", None), ("step", {"step_size": 1})):
        ck = Checkpointer(tmp_path / f"{schedule}.ckpt", min_interval_s=0)
        fit(linear(), data, epochs=1, lr=0.1, batch_size=2, schedule=schedule,
            schedule_options=options, checkpoint=ck)  # fmt: skip
        state = read_checkpoint(ck.path)
        assert state["signature"]["schedule"] == schedule
        if schedule == "constant":
            assert state["schedule"] is None
        else:
            assert state["schedule"]["last_epoch"] == 1
        assert state["best_state"] is None and state["finished"]


def test_a_callable_schedule_without_a_name_signs_as_empty(tmp_path):
    import functools

    ck = Checkpointer(tmp_path / "p.ckpt", min_interval_s=0)
    fit(linear(), regression(), epochs=1, lr=0.1, batch_size=2, checkpoint=ck,
        schedule=functools.partial(pow, 0.5))  # fmt: skip
    assert read_checkpoint(ck.path)["signature"]["schedule"] == ""


def test_the_checkpoint_holds_every_part_under_its_name(tmp_path):
    ck = Checkpointer(tmp_path / "k.ckpt", min_interval_s=0)
    reg = Counting()
    fit(linear(), regression(), epochs=2, lr=0.1, batch_size=2, checkpoint=ck, regularizer=reg,
        schedule="step", schedule_options={"step_size": 1},
        early_stopping=EarlyStopping(patience=5))  # fmt: skip
    state = read_checkpoint(ck.path)
    assert set(state) == {"trainer", "signature", "epoch", "position", "finished", "elapsed",
                          "model", "optimizer", "schedule", "generator", "early_stopping",
                          "best_state", "history", "stateful", "rng"}  # fmt: skip
    assert state["signature"]["stateful"] == ["Counting"]
    assert state["stateful"] == [{"n": 6}] and state["epoch"] == 3 and state["finished"]
    assert set(state["model"]) == {"weight", "bias"} and state["schedule"]["last_epoch"] == 2
    assert set(state["best_state"]) == {"weight", "bias"}


def test_mid_epoch_saves_come_after_every_kth_batch(tmp_path):
    ck = Recording(tmp_path / "r.ckpt", min_interval_s=0, every_batches=3)
    fit(linear(), regression(), epochs=2, lr=0.1, batch_size=1, checkpoint=ck)
    # 5 batches an epoch: after batch 3 (the next is batch index 3), the epoch end, the final
    assert ck.positions == [3, None, 3, None]


def test_a_forward_pass_that_raises_on_nonfinite_weights_is_a_divergence():
    class Checked(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = linear()

        def forward(self, x):
            torch.linalg.svdvals(self.lin.weight)  # raises on NaN weights
            return self.lin(x)

    m = Checked()
    with torch.no_grad():
        m.lin.weight[0, 1] = math.nan
    h = fit(m, regression(), epochs=2, lr=0.1, batch_size=5)
    assert h.status == "diverged" and h.epochs_run == 1
    assert h.message.startswith("the training step raised ")
    assert h.message.endswith("in epoch 1, batch 1: non-finite parameters in lin.weight")


def test_eval_train_uses_the_task_and_the_loss_of_the_run():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, generator=g, dtype=D)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    data = Dataset("c", Split(x, y), Split(x, y), Split(x, y), n_classes=3)

    def double_ce(out, t):
        return 2 * F.cross_entropy(out, t)

    m = nn.Linear(2, 3, dtype=D)
    h = fit(m, data, epochs=1, lr=0.1, batch_size=3, loss=double_ce, eval_train=True)
    with torch.no_grad():
        out = m(x)
    assert h.epochs[0]["train_eval_loss"] == pytest.approx(float(double_ce(out, y)), rel=1e-12)
    assert h.epochs[0]["train_error"] == float((out.argmax(-1) != y).double().mean())


def test_early_stopping_without_a_best_epoch_restores_nothing():
    h = fit(linear(), regression(), epochs=3, lr=1e200, batch_size=1,
            early_stopping=EarlyStopping(patience=1))  # fmt: skip
    assert h.status == "diverged" and h.best_epoch is None
