"""Exact answers for ``fit_ensemble`` and its step on tiny float64 problems: every member
against the float64 transcription of mini-batch SGD (``tests/train/tiny_regression.py``), the
records, histories and checkpoint signature it writes, per-member divergence, early stopping and
callbacks, and the invalid inputs with their full messages.

Written for the mutation score of ``smithing.train.ensemble`` and
``smithing.train.ensemble_step`` (issue 15).
"""

from __future__ import annotations

import math

import pytest
import torch
from tiny_regression import (
    FINAL_KEYS,
    Counting,
    assert_records,
    assert_weights,
    linear,
    mse,
    regression,
    transcription,
)
from torch import nn

from checkpoint_tools import Recording
from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer
from smithing.checkpoint.files import read_checkpoint
from smithing.data.base import Dataset, Split
from smithing.train.ensemble import MemberHooks, fit_ensemble
from smithing.train.ensemble_step import clip_norms, nonfinite_members

D = torch.float64
INITS = [((0.3, -0.1), 0.2), ((-0.5, 0.4), 0.0), ((0.1, 0.1), -0.3)]


def members(k=3):
    return [linear(w, b) for w, b in INITS[:k]]


def reference(data, m, **kw):
    w, b = INITS[m]
    return transcription(data, w=w, b=b, **kw)


# ---------------------------------------------------------------- every member, exactly
@pytest.mark.parametrize("batch_size", [2, 5])
def test_each_member_equals_its_float64_transcription(batch_size):
    data = regression()
    models = members()
    seeds, lrs = [0, 1, 2], [0.05, 0.1, 0.2]
    hs = fit_ensemble(models, data, seeds=seeds, lrs=lrs, epochs=3, batch_size=batch_size)
    for m, (model, h) in enumerate(zip(models, hs)):
        w, b, recs = reference(data, m, epochs=3, lr=lrs[m], batch_size=batch_size, seed=seeds[m])
        assert_weights(model, w, b)
        assert_records(h, recs)
        assert (h.status, h.stop_reason, h.message, h.best_epoch) == ("done", "max_epochs", "", 3)
        assert h.config == {"epochs": 3, "lr": lrs[m], "batch_size": batch_size, "seed": m}
        assert list(h.final) == FINAL_KEYS
        for name in ("train", "valid", "test"):
            want = mse(w, b, data.split(name))
            assert h.final[f"{name}_loss"] == pytest.approx(want, rel=1e-12)
            assert h.final[f"{name}_error"] == pytest.approx(want, rel=1e-12)
        assert h.seconds == hs[0].seconds >= 0


def test_rates_above_one_a_schedule_and_a_custom_loss():
    """lr_ref = max(1, max lr): the rates 0.5 and 3 are each exact; the schedule scales them
    per epoch; a custom loss (here a tenth of the MSE) is the training and validation loss."""
    data = regression(x_scale=0.3)

    def loss(out, y):
        return 0.1 * ((out.reshape(y.shape) - y) ** 2).mean()

    def factor(epoch):
        return [1.0, 0.5, 0.25][epoch]

    models = members(2)
    lrs = [0.5, 3.0]
    hs = fit_ensemble(models, data, seeds=[4, 4], lrs=lrs, epochs=3, batch_size=2, loss=loss,
                      schedule=factor)  # fmt: skip
    for m, (model, h) in enumerate(zip(models, hs)):
        w, b, recs = reference(data, m, epochs=3, lr=lrs[m], batch_size=2, seed=4, scale=0.1,
                               factor=factor)  # fmt: skip
        assert_weights(model, w, b)
        assert_records(h, recs)
        assert h.final["test_loss"] == pytest.approx(0.1 * mse(w, b, data.test), rel=1e-12)
        assert h.final["test_error"] == pytest.approx(mse(w, b, data.test), rel=1e-12)
    assert [r["lr"] for r in hs[1].epochs] == [3.0, 1.5, 0.75]
    # a named schedule with its options
    models = members(2)
    hs = fit_ensemble(models, data, seeds=[4, 4], lrs=lrs, epochs=3, batch_size=2, loss=loss,
                      schedule="step", schedule_options={"step_size": 1, "gamma": 0.5})  # fmt: skip
    assert [r["lr"] for r in hs[1].epochs] == pytest.approx([3.0, 1.5, 0.75], rel=1e-15)


def test_a_penalty_hooks_and_clip_norm_per_member():
    data = regression()
    seen = []

    def penalty(params):  # 0.3 |w_m|^2 for every member: (M,)
        return 0.3 * (params["weight"] ** 2).sum((1, 2))

    def before(params, lrs):
        seen.append(("regularizer", lrs.tolist(), torch.is_grad_enabled()))

    def after(params, lrs):
        seen.append(("hooks", lrs.tolist(), torch.is_grad_enabled()))

    models = members()
    clips = [0.05, 10.0, 0.2]
    hs = fit_ensemble(models, data, seeds=[0, 1, 2], lrs=[0.1, 0.2, 0.05], epochs=2,
                      batch_size=3, regularizer=MemberHooks(penalty=penalty, before_step=before),
                      hooks=MemberHooks(after_step=after), clip_norm=clips)  # fmt: skip
    for m, (model, h) in enumerate(zip(models, hs)):
        lr = [0.1, 0.2, 0.05][m]
        w, b, recs = reference(data, m, epochs=2, lr=lr, batch_size=3, seed=m, l2=0.3,
                               clip=clips[m])  # fmt: skip
        # (float64 members: the per-member norms and radii are float64 too)
        assert_weights(model, w, b, rtol=1e-12)
        assert_records(h, recs, rel=1e-12)  # the recorded loss is the data loss, no penalty
    rates = [0.1, 0.2, 0.05]
    assert seen == [("regularizer", rates, False), ("hooks", rates, False)] * 4
    # one radius for all members
    models = members()
    fit_ensemble(models, data, seeds=[0, 1, 2], lrs=[0.1, 0.2, 0.05], epochs=1, batch_size=3,
                 clip_norm=0.05)  # fmt: skip
    for m, model in enumerate(models):
        w, b, _ = reference(data, m, epochs=1, lr=[0.1, 0.2, 0.05][m], batch_size=3, seed=m,
                            clip=0.05)  # fmt: skip
        assert_weights(model, w, b, rtol=1e-12)


def test_eval_train_progress_and_final_eval_off():
    data = regression()
    seen = []
    models = members(2)
    hs = fit_ensemble(models, data, seeds=[0, 1], lrs=[0.1, 0.1], epochs=2, batch_size=2,
                      eval_train=True, final_eval=False,
                      progress=lambda e, rs: seen.append((e, [dict(r) for r in rs])))  # fmt: skip
    assert [e for e, _ in seen] == [1, 2]
    for epoch, recs in seen:
        for m, rec in enumerate(recs):
            assert rec == hs[m].epochs[epoch - 1]
            w, b, _ = reference(data, m, epochs=epoch, lr=0.1, batch_size=2, seed=m)
            assert rec["train_eval_loss"] == pytest.approx(mse(w, b, data.train), rel=1e-12)
            assert rec["train_error"] == pytest.approx(mse(w, b, data.train), rel=1e-12)
    for h in hs:
        # the best epoch is the last one, as fit says, also without the final metrics
        assert h.final == {} and h.best_epoch == 2 and h.seconds == hs[0].seconds >= 0


# ---------------------------------------------------------------- how members end
def test_a_member_whose_loss_overflows_is_frozen_alone():
    data = regression()
    models = members()
    lrs = [0.1, 1e200, 0.05]
    hs = fit_ensemble(models, data, seeds=[0, 1, 2], lrs=lrs, epochs=3, batch_size=1)
    bad = hs[1]
    assert (bad.status, bad.stop_reason) == ("diverged", "diverged")
    e = bad.epochs_run
    assert bad.message in (f"train loss became {v} in epoch {e}" for v in ("nan", "inf"))
    assert set(bad.epochs[-1]) == {"epoch", "train_loss", "lr", "valid_loss", "valid_error",
                                   "seconds"}  # fmt: skip
    assert bad.best_epoch is None and all(math.isnan(v) for v in bad.final.values())
    assert list(bad.final) == FINAL_KEYS
    # its parameters are made finite (NaN/inf entries are 0) and stay so
    assert all(bool(torch.isfinite(p).all()) for p in models[1].parameters())
    for m in (0, 2):
        w, b, recs = reference(data, m, epochs=3, lr=lrs[m], batch_size=1, seed=m)
        assert_weights(models[m], w, b)
        assert_records(hs[m], recs)
        assert hs[m].status == "done" and hs[m].best_epoch == 3


def test_validation_inf_diverges_every_member_and_ends_the_run():
    data = regression()
    vx = data.valid.x.clone()
    vx[0, 0] = math.inf
    bad = Dataset("tiny", data.train, Split(vx, data.valid.y), data.test, task="regression")
    seen = []
    hs = fit_ensemble(members(2), bad, seeds=[0, 1], lrs=[0.1, 0.1], epochs=3, batch_size=2,
                      progress=lambda e, recs: seen.append(e))  # fmt: skip
    assert seen == [1]  # no member trains on: the run ends
    for h in hs:
        assert (h.status, h.stop_reason, h.epochs_run) == ("diverged", "diverged", 1)
        assert h.message == "valid loss became inf in epoch 1"


class RaisingSGD(torch.optim.SGD):
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if not bool(torch.isfinite(p.grad).all()):
                    raise FloatingPointError("refused\nmore")
        return super().step(closure)


def test_a_step_that_raises_freezes_the_member_at_fault(monkeypatch):
    """Example 3 makes the gradient non-finite; the optimizer refuses it. Each member meets it
    at its own batch (its own order) and is frozen there, with its own message; the other goes
    on from the redone step until it meets the example too."""
    from smithing import optim
    from smithing._registry import Entry

    monkeypatch.setitem(optim.OPTIMIZERS._entries, "raising-sgd",
                        Entry("raising-sgd", lambda p, lr: RaisingSGD(p, lr=lr), ""))  # fmt: skip
    monkeypatch.setitem(optim._LR_LINEAR, "raising-sgd", True)
    data = regression()
    x = data.train.x.clone()
    x[3, 1] = math.inf
    bad = Dataset("tiny", Split(x, data.train.y), data.valid, data.test, task="regression")
    seeds = [0, 3]
    batches = [
        int((torch.randperm(5, generator=torch.Generator().manual_seed(s)) == 3).nonzero()) + 1
        for s in seeds
    ]
    assert batches[0] != batches[1]
    models = members(2)
    hs = fit_ensemble(models, bad, seeds=seeds, lrs=[0.1, 0.2], epochs=2, batch_size=1,
                      optimizer="raising-sgd")  # fmt: skip
    for m, h in enumerate(hs):
        assert (h.status, h.stop_reason, h.epochs_run) == ("diverged", "diverged", 1)
        assert set(h.epochs[0]) == {"epoch", "train_loss", "lr", "seconds"}
        assert math.isnan(h.epochs[0]["train_loss"]) and h.epochs[0]["lr"] == [0.1, 0.2][m]
        assert h.message == (
            "the training step raised FloatingPointError (refused) in epoch 1, batch "
            f"{batches[m]}: its loss is inf"
        )
        assert all(math.isnan(v) for v in h.final.values())
    # each member's weights are those before the batch that raised
    for m, model in enumerate(models):
        w, b = torch.tensor(INITS[m][0], dtype=D), torch.tensor(INITS[m][1], dtype=D)
        perm = torch.randperm(5, generator=torch.Generator().manual_seed(seeds[m]))
        for i in perm[: batches[m] - 1].tolist():
            r = x[i] @ w + b - data.train.y[i]
            w, b = w - [0.1, 0.2][m] * 2 * r * x[i], b - [0.1, 0.2][m] * 2 * r
        assert_weights(model, w, b)


def test_callbacks_see_and_change_each_member_and_stop_it():
    data = regression()
    calls = []

    def look(epoch, rec, model):
        calls.append((epoch, rec["lr"], float(model.bias.detach())))
        return epoch == 1 and rec["lr"] == 0.2

    def shift(epoch, rec, model):
        with torch.no_grad():
            model.bias.add_(1.0)  # kept: the member goes on from there

    models = members(2)
    seen = []
    hs = fit_ensemble(models, data, seeds=[0, 1], lrs=[0.1, 0.2], epochs=2, batch_size=5,
                      callbacks=[look, shift], progress=lambda e, rs: seen.append(rs))  # fmt: skip
    assert [h.stop_reason for h in hs] == ["max_epochs", "callback"]
    assert seen[1][1] == {} and seen[1][0] == hs[0].epochs[1]  # a stopped member: {}
    assert [h.epochs_run for h in hs] == [2, 1]
    w, b, _ = reference(data, 0, epochs=1, lr=0.1, batch_size=5, seed=0)
    w1, b1, _ = reference(data, 1, epochs=1, lr=0.2, batch_size=5, seed=1)
    assert calls[0] == (1, 0.1, pytest.approx(float(b), rel=1e-12))
    assert calls[1] == (1, 0.2, pytest.approx(float(b1), rel=1e-12))
    assert calls[2][:2] == (2, 0.1)
    # member 0's second epoch starts from its bias + 1
    w2, b2, _ = transcription(data, w=tuple(w.tolist()), b=float(b) + 1.0, epochs=1, lr=0.1,
                              batch_size=5, seed=0)  # fmt: skip
    assert float(models[0].bias.detach()) == pytest.approx(float(b2) + 1.0, rel=1e-12)
    # the stopped member keeps what the callback made of it
    assert float(models[1].bias.detach()) == pytest.approx(float(b1) + 1.0, rel=1e-12)
    torch.testing.assert_close(models[1].weight.detach()[0], w1, rtol=1e-12, atol=1e-14)


def scripted(plans):
    """Early-stopping factories whose members see scripted values (a list per member)."""
    made = []

    def factory():
        values, patience, restore = plans[len(made)]
        es = EarlyStopping(patience=patience, restore_best_weights=restore)
        orig = es.update
        es.update = lambda epoch, value, v=values: orig(epoch, v[epoch - 1])
        made.append(es)
        return es

    return factory, made


def test_early_stopping_per_member_restores_each_best():
    data = regression()
    factory, made = scripted(
        [
            ([3.0, 1.0, 2.0, 2.5], 1, True),  # best 2, stops at 3: epoch 2 restored
            ([1.0, 2.0, 0.5, 0.2], 1, False),  # stops at 2, keeps its last weights
            ([4.0, 3.0, 2.0, 1.0], 1, True),  # improves every epoch
        ]
    )
    models = members()
    hs = fit_ensemble(models, data, seeds=[0, 1, 2], lrs=[0.1] * 3, epochs=4, batch_size=2,
                      early_stopping=factory)  # fmt: skip
    assert len(made) == 3
    assert [h.stop_reason for h in hs] == ["patience", "patience", "max_epochs"]
    assert [h.epochs_run for h in hs] == [3, 2, 4]
    assert [h.best_epoch for h in hs] == [2, 1, 4]
    for m, epochs in enumerate([2, 2, 4]):
        w, b, _ = reference(data, m, epochs=epochs, lr=0.1, batch_size=2, seed=m)
        assert_weights(models[m], w, b)
        assert hs[m].final["test_loss"] == pytest.approx(mse(w, b, data.test), rel=1e-12)


def test_a_diverged_member_with_a_best_epoch_keeps_usable_final_metrics():
    data = regression()
    factory, _ = scripted([([1.0, 2.0, 3.0, 4.0], 10, True)] * 2)

    def boom(epoch, rec, model):  # member 1's weights overflow its next epoch's loss
        if rec["lr"] == 0.2 and epoch == 2:
            with torch.no_grad():
                model.weight.fill_(1e300)

    models = members(2)
    hs = fit_ensemble(models, data, seeds=[0, 1], lrs=[0.1, 0.2], epochs=4, batch_size=1,
                      early_stopping=factory, callbacks=[boom])  # fmt: skip
    assert (hs[1].status, hs[1].best_epoch, hs[1].epochs_run) == ("diverged", 1, 3)
    w, b, _ = reference(data, 1, epochs=1, lr=0.2, batch_size=1, seed=1)
    assert_weights(models[1], w, b)  # the best epoch's weights restored
    assert hs[1].final["test_loss"] == pytest.approx(mse(w, b, data.test), rel=1e-12)
    assert (hs[0].status, hs[0].best_epoch, hs[0].epochs_run) == ("done", 1, 4)


# ---------------------------------------------------------------- invalid inputs
BAD = [
    ({"seeds": [0]}, "seeds=[0] is invalid: expected 2 seeds, one per model"),
    ({"lrs": [0.1]}, "lrs=[0.1] is invalid: expected 2 learning rates, one per model"),
    ({"lrs": [0.1, 0]}, "lrs=[0.1, 0] is invalid: expected positive learning rates"),
    ({"lrs": [-0.1, 0.1]}, "lrs=[-0.1, 0.1] is invalid: expected positive learning rates"),
    ({"lrs": [0.1, math.inf]}, "lrs=[0.1, inf] is invalid: expected positive learning rates"),
    ({"epochs": 0}, "epochs=0 is invalid: expected a positive int"),
    ({"epochs": 1.0}, "epochs=1.0 is invalid: expected a positive int"),
    ({"batch_size": 0}, "batch_size=0 is invalid: expected a positive int"),
    ({"batch_size": 2.0}, "batch_size=2.0 is invalid: expected a positive int"),
    ({"clip_norm": 0}, "clip_norm=0 is invalid: expected a positive number"),
    ({"clip_norm": -1.0}, "clip_norm=-1.0 is invalid: expected a positive number"),
    ({"clip_norm": math.inf}, "clip_norm=inf is invalid: expected a positive number"),
    ({"clip_norm": True}, "clip_norm=True is invalid: expected a positive number"),
    (
        {"clip_norm": [1.0]},
        "clip_norm=[1.0] is invalid: expected a positive number, or 2 of them (one per member)",
    ),
    (
        {"clip_norm": [1.0, 0.0]},
        "clip_norm=[1.0, 0.0] is invalid: expected a positive number, or 2 of them (one per "
        "member)",
    ),
    (
        {"clip_norm": [1.0, math.nan]},
        "clip_norm=[1.0, nan] is invalid: expected a positive number, or 2 of them (one per "
        "member)",
    ),
]


@pytest.mark.parametrize("bad,message", BAD)
def test_invalid_inputs_with_their_messages(bad, message):
    kw = {"seeds": [0, 1], "lrs": [0.1, 0.1], "epochs": 1, "batch_size": 2} | bad
    with pytest.raises(ValueError) as info:
        fit_ensemble(members(2), regression(), **kw)
    assert str(info.value) == message


def test_clip_norms_values():
    assert clip_norms(None, 2, torch.device("cpu")) is None
    assert clip_norms(2, 3, torch.device("cpu")) == 2.0
    assert isinstance(clip_norms(2, 3, torch.device("cpu")), float)
    t = clip_norms((1, 2.5), 2, torch.device("cpu"))
    assert t.dtype == torch.float64 and t.tolist() == [1.0, 2.5]  # exact; cast to the norms' dtype


def test_nonfinite_members_names_loss_then_gradient_then_parameters():
    w = torch.zeros(4, 2, 3, requires_grad=True)
    b = torch.zeros(4, 2, requires_grad=True)
    params = {"w": w, "b": b}
    assert nonfinite_members(params, None, 4) == [None] * 4
    assert nonfinite_members(params, torch.zeros(4), 4) == [None] * 4
    # a non-finite first tensor is found whatever the later ones hold
    b.grad = torch.zeros_like(b)
    with torch.no_grad():
        w[0, 1, 1] = math.inf
    w.grad = torch.zeros_like(w)
    w.grad[3, 0, 0] = math.nan
    assert nonfinite_members(params, None, 4) == [
        "non-finite parameters", None, None, "a non-finite gradient"]  # fmt: skip
    with torch.no_grad():
        w[0, 1, 1] = 0.0
    w.grad = torch.zeros_like(w)
    w.grad[1, 0, 2] = math.inf
    w.grad[2, 1, 1] = math.nan
    with torch.no_grad():
        b[2, 0] = math.nan
        b[3, 1] = -math.inf
    losses = torch.tensor([1.0, 2.0, math.inf, 4.0])
    assert nonfinite_members(params, losses, 4) == [
        None,
        "a non-finite gradient",
        "its loss is inf",
        "non-finite parameters",
    ]
    assert nonfinite_members(params, None, 4) == [
        None,
        "a non-finite gradient",
        "a non-finite gradient",
        "non-finite parameters",
    ]
    losses = torch.tensor([math.nan, 2.0, 3.0, -math.inf], requires_grad=True)
    assert nonfinite_members(params, losses, 4)[0] == "its loss is nan"
    assert nonfinite_members(params, losses, 4)[3] == "its loss is -inf"


# ---------------------------------------------------------------- the checkpoint's signature
def test_the_checkpoint_signature_holds_every_setting(tmp_path):
    ck = Checkpointer(tmp_path / "c.ckpt", min_interval_s=0)
    fit_ensemble(members(2), regression(), seeds=[3, 4], lrs=[0.1, 0.2], epochs=2,
                 batch_size=2, checkpoint=ck, optimizer="momentum",
                 optimizer_options={"momentum": 0.5}, regularizer=Counting(),
                 early_stopping=EarlyStopping, clip_norm=[1.0, 2.0])  # fmt: skip
    state = read_checkpoint(ck.path)
    assert state["trainer"] == "fit_ensemble"
    assert state["signature"] == {
        "members": 2,
        "seeds": [3, 4],
        "lrs": [0.1, 0.2],
        "epochs": 2,
        "batch_size": 2,
        "n_train": 5,
        "optimizer": "momentum",
        "optimizer_options": "{'momentum': 0.5}",
        "schedule": None,
        "schedule_options": "{}",
        "early_stopping": True,
        "parameters": [["weight", [2, 1, 2]], ["bias", [2, 1]]],
        "stateful": ["Counting"],
        "clip_norm": "[1.0, 2.0]",
    }
    ck = Checkpointer(tmp_path / "d.ckpt", min_interval_s=0)

    def halving(epoch):
        return 0.5**epoch

    fit_ensemble(members(1), regression(), seeds=[0], lrs=[0.1], epochs=1, checkpoint=ck,
                 schedule=halving, precision="bf16")  # fmt: skip
    sig = read_checkpoint(ck.path)["signature"]
    assert sig["schedule"].endswith("halving") and sig["precision"] == "bf16"
    assert sig["early_stopping"] is False
    assert "stateful" not in sig and "clip_norm" not in sig


def test_a_member_model_is_needed_and_modules_are_written_back():
    data = regression()
    with pytest.raises(ValueError) as info:
        fit_ensemble([], data, seeds=[], lrs=[], epochs=1)
    assert str(info.value) == "models=[] is invalid: expected at least one model"
    bn = [nn.Sequential(nn.Linear(2, 3, dtype=D), nn.BatchNorm1d(3, dtype=D),
                        nn.Linear(3, 1, dtype=D)) for _ in range(2)]  # fmt: skip
    fit_ensemble(bn, data, seeds=[0, 1], lrs=[0.1, 0.1], epochs=1, batch_size=5, final_eval=False)
    for model in bn:  # running statistics trained (one batch: momentum 0.1 from 0 / 1)
        assert int(model[1].num_batches_tracked) == 1
        assert not torch.equal(model[1].running_mean, torch.zeros(3, dtype=D))


def first_steps(data, m, *, lr, batch_size, seed, k):
    """Member ``m``'s weights after its first ``k`` SGD steps of epoch 1 (float64)."""
    w, b = torch.tensor(INITS[m][0], dtype=D), torch.tensor(INITS[m][1], dtype=D)
    perm = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))
    for i in range(0, k * batch_size, batch_size):
        idx = perm[i : i + batch_size]
        xb, yb = data.train.x[idx], data.train.y[idx]
        r = xb @ w + b - yb
        w, b = w - lr * 2 * xb.T @ r / len(idx), b - lr * 2 * r.mean()
    return w, b


@pytest.mark.parametrize("where", ["before_step", "after_step"])
def test_a_hook_that_raises_is_undone_and_redone_without_the_member(where):
    """The hook's second call makes member 1's weight NaN and raises: member 1 is frozen with
    the weights it had before that step, member 0's step is redone and it trains on as alone."""
    data = regression()
    calls = []

    def hook(params, lrs):
        calls.append(lrs.tolist())
        if len(calls) == 2:
            params["weight"][1].fill_(math.nan)
            raise RuntimeError("refused")

    models = members(2)
    hs = fit_ensemble(models, data, seeds=[0, 1], lrs=[0.1, 0.2], epochs=2, batch_size=2,
                      regularizer=MemberHooks(**{where: hook}))  # fmt: skip
    assert hs[1].status == "diverged" and hs[1].epochs_run == 1
    assert hs[1].message == (
        "the training step raised RuntimeError (refused) in epoch 1, batch 2: non-finite parameters"
    )
    w, b = first_steps(data, 1, lr=0.2, batch_size=2, seed=1, k=1)
    assert_weights(models[1], w, b)
    w, b, recs = reference(data, 0, epochs=2, lr=0.1, batch_size=2, seed=0)
    assert_weights(models[0], w, b)
    assert_records(hs[0], recs)
    # the redone step's hook sees member 1 frozen (rate 0); 3 steps an epoch
    assert calls[:3] == [[0.1, 0.2], [0.1, 0.2], [0.1, 0.0]] and len(calls) == 7


def test_compile_compiles_the_members_forward_and_losses(monkeypatch):
    import smithing.train.ensemble as ensemble

    compiled = []

    def fake_compile_step(fn, device):
        compiled.append(device)
        return fn

    monkeypatch.setattr(ensemble, "compile_step", fake_compile_step)
    data = regression()
    fit_ensemble(members(2), data, seeds=[0, 1], lrs=[0.1, 0.1], epochs=1, compile=False)
    assert compiled == []
    models = members(2)
    hs = fit_ensemble(models, data, seeds=[0, 1], lrs=[0.1, 0.2], epochs=2, batch_size=2,
                      compile=True)  # fmt: skip
    assert compiled == [torch.device("cpu")]
    for m in range(2):
        w, b, recs = reference(data, m, epochs=2, lr=[0.1, 0.2][m], batch_size=2, seed=m)
        assert_weights(models[m], w, b)
        assert_records(hs[m], recs)


@pytest.mark.parametrize(
    "precision,inside",
    [("fp32", (False, "highest")), ("tf32", (False, "high")), ("bf16", (True, "highest"))],
)
def test_precision_autocasts_the_members_forward_and_sets_matmuls_inside(precision, inside):
    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x):
            seen.append((torch.is_autocast_enabled("cpu"), torch.get_float32_matmul_precision()))
            return self.lin(x)

    data = regression()
    f32 = Dataset("tiny32", *(Split(s.x.float(), s.y.float()) for s in (data.train, data.valid,
                  data.test)), task="regression")  # fmt: skip
    hs = fit_ensemble([Spy(), Spy()], f32, seeds=[0, 1], lrs=[0.1, 0.1], epochs=1, batch_size=5,
                      precision=precision, final_eval=False)  # fmt: skip
    assert hs[0].status == "done"
    assert seen[0] == inside  # the training step (the evaluation is not autocast)
    assert torch.get_float32_matmul_precision() == "highest"


def test_a_callable_schedule_without_a_name_signs_as_empty(tmp_path):
    import functools

    ck = Checkpointer(tmp_path / "p.ckpt", min_interval_s=0)
    fit_ensemble(members(1), regression(), seeds=[0], lrs=[0.1], epochs=1, checkpoint=ck,
                 schedule=functools.partial(pow, 0.5))  # fmt: skip
    assert read_checkpoint(ck.path)["signature"]["schedule"] == ""


def test_the_checkpoint_holds_every_part_under_its_name(tmp_path):
    ck = Checkpointer(tmp_path / "k.ckpt", min_interval_s=0)
    models = members(2)
    fit_ensemble(models, regression(), seeds=[0, 1], lrs=[0.1, 0.2], epochs=2, batch_size=2,
                 checkpoint=ck, early_stopping=lambda: EarlyStopping(patience=5))  # fmt: skip
    state = read_checkpoint(ck.path)
    assert set(state) == {"trainer", "signature", "epoch", "position", "finished", "elapsed",
                          "params", "buffers", "generators", "active", "crashed",
                          "early_stopping", "best", "has_best", "optimizer", "histories",
                          "stateful", "rng"}  # fmt: skip
    assert (state["epoch"], state["position"], state["finished"]) == (3, None, True)
    assert set(state["params"]) == set(state["best"]) == {"weight", "bias"}
    assert state["buffers"] == {} and state["crashed"] == {} and state["stateful"] == []
    assert state["active"] == [True, True] and state["has_best"] == [True, True]
    assert [s["best_epoch"] for s in state["early_stopping"]] == [2, 2]
    for m, g in enumerate(state["generators"]):  # where each member's order generator is
        gen = torch.Generator().manual_seed(m)
        torch.randperm(5, generator=gen), torch.randperm(5, generator=gen)
        assert torch.equal(g, gen.get_state())
    assert len(state["histories"]) == 2


def member_step(linear_in_lr=True, **hooks):
    from smithing.train.ensemble_step import MemberStep
    from smithing.train.stacked import StackedModel

    stacked = StackedModel(members(3))
    opt = torch.optim.SGD(list(stacked.params.values()), lr=1.0)
    active = torch.ones(3, dtype=torch.bool)
    kw = {"penalty": None, "before_step": None, "after_step": None} | hooks
    step = MemberStep(stacked, opt, lambda xb, yb: torch.zeros(3), linear=linear_in_lr,
                      clip=None, active=active, active_l=[True] * 3, **kw)  # fmt: skip
    return step, stacked, opt


def test_set_rates_runs_the_optimizer_at_lr_ref_and_scales_each_member():
    step, stacked, opt = member_step()
    assert step.M == 3 and step.pre is None and step.mid is None and step.crashed == {}
    step.set_rates(torch.tensor([0.5, 0.2, 0.25], dtype=D))
    assert step.ref == 1.0 and opt.param_groups[0]["lr"] == 1.0  # lr_ref >= 1
    assert step.lr_views[0].shape == (3, 1, 1) and step.lr_views[1].shape == (3, 1)
    assert step.lr_views[0].flatten().tolist() == [0.5, 0.2, 0.25]
    assert step.hook_lrs.tolist() == [0.5, 0.2, 0.25] and step.all_active
    step.set_rates(torch.tensor([0.5, 3.0, 2.0], dtype=D))
    assert step.ref == 3.0 and opt.param_groups[0]["lr"] == 3.0
    assert step.lr_views[1].flatten().tolist() == [0.5 / 3.0, 1.0, 2.0 / 3.0]
    # a frozen member counts neither in lr_ref nor in the factors, and its hooks see 0
    step.freeze(1, diverged=False)
    step.set_rates(torch.tensor([0.5, 3.0, 2.0], dtype=D))
    assert step.ref == 2.0 and step.active_l == [True, False, True] and not step.all_active
    assert step.lr_views[1].flatten().tolist() == [0.25, 0.0, 1.0]
    assert step.hook_lrs.tolist() == [0.5, 0.0, 2.0]
    assert step.active_views[0].flatten().tolist() == [True, False, True]
    # an optimizer not linear in lr: one rate, the first member's, nothing rescaled
    step, _, opt = member_step(linear_in_lr=False)
    step.set_rates(torch.tensor([0.5, 0.5, 0.5], dtype=D))
    assert step.ref == 0.5 and opt.param_groups[0]["lr"] == 0.5
    assert step.lr_views[0].flatten().tolist() == [1.0, 1.0, 1.0]


def test_freeze_zeroes_a_diverged_members_nonfinite_entries_only():
    step, stacked, _ = member_step()
    with torch.no_grad():
        stacked.params["weight"][1] = torch.tensor([[math.inf, -math.inf]], dtype=D)
        stacked.params["bias"][1] = math.nan
        stacked.params["weight"][2] = torch.tensor([[math.inf, 2.0]], dtype=D)
    step.freeze(2, diverged=False)  # stopped, not diverged: left as it is
    assert stacked.params["weight"][2].tolist() == [[math.inf, 2.0]]
    step.freeze(1, diverged=True)
    assert stacked.params["weight"][1].tolist() == [[0.0, 0.0]]
    assert stacked.params["bias"][1].tolist() == [0.0]
    assert stacked.params["weight"][0].tolist() == [[0.3, -0.1]]  # the others untouched
    assert step.active.tolist() == [True, False, False] and step.active_l == [True, False, False]


def test_a_step_with_every_member_frozen_returns_none():
    step, stacked, _ = member_step()
    step.set_rates(torch.tensor([0.1, 0.1, 0.1], dtype=D))

    def losses(xb, yb):
        raise RuntimeError("every member is bad")

    step.forward_losses = losses
    with torch.no_grad():
        for v in stacked.params.values():
            v.fill_(math.nan)
    assert step.step(torch.zeros(3, 1, 2), torch.zeros(3, 1), epoch=2, batch=5) is None
    assert step.active_l == [False] * 3
    assert step.crashed == {
        m: "the training step raised RuntimeError (every member is bad) in epoch 2, batch 5: "
        "non-finite parameters"
        for m in range(3)
    }
    # with every number finite, the error is a bug and propagates
    step, _, _ = member_step()
    step.set_rates(torch.tensor([0.1, 0.1, 0.1], dtype=D))
    step.forward_losses = losses
    with pytest.raises(RuntimeError, match="every member is bad"):
        step.step(torch.zeros(3, 1, 2), torch.zeros(3, 1), epoch=1, batch=1)


def test_a_forward_that_raises_on_a_members_nonfinite_weights_zeroes_them_and_goes_on():
    """Member 1's weights are NaN before the step (an earlier hook made them so) and the
    forward refuses them: member 1 is frozen as diverged, its non-finite entries become 0, and
    the step is redone for the others (a member frozen with NaN left in would make the redone
    forward raise again, now with no training member at fault)."""
    step, stacked, _ = member_step()
    step.set_rates(torch.tensor([0.1, 0.1, 0.1], dtype=D))
    calls = []

    def losses(xb, yb):
        calls.append(1)
        if not all(bool(torch.isfinite(v).all()) for v in stacked.params.values()):
            raise FloatingPointError("non-finite weights refused")
        return (stacked.params["weight"].sum((1, 2)) + stacked.params["bias"].sum(1)) ** 2

    step.forward_losses = losses
    with torch.no_grad():
        stacked.params["weight"][1, 0, 0] = math.nan
    before = {k: v.detach().clone() for k, v in stacked.params.items()}
    out = step.step(torch.zeros(3, 1, 2), torch.zeros(3, 1), epoch=1, batch=3)
    assert len(calls) == 2 and out is not None and torch.isfinite(out).all()
    assert step.active_l == [True, False, True]
    assert step.crashed == {
        1: "the training step raised FloatingPointError (non-finite weights refused) in epoch "
        "1, batch 3: non-finite parameters"
    }
    assert stacked.params["weight"][1].tolist() == [[0.0, 0.4]]  # NaN -> 0, the rest kept
    assert stacked.params["bias"][1].tolist() == [0.0]  # the frozen member did not step
    for m in (0, 2):  # the others took the redone step: d loss / d w = 2 * (sum w + b)
        s = float(before["weight"][m].sum() + before["bias"][m].sum())
        torch.testing.assert_close(
            stacked.params["weight"][m], before["weight"][m] - 0.1 * 2 * s, rtol=0, atol=1e-15
        )


def test_set_rates_of_one_member_not_linear_in_lr_runs_at_its_rate():
    from smithing.train.ensemble_step import MemberStep
    from smithing.train.stacked import StackedModel

    stacked = StackedModel(members(1))
    opt = torch.optim.SGD(list(stacked.params.values()), lr=1.0)
    step = MemberStep(stacked, opt, lambda xb, yb: torch.zeros(1), linear=False, clip=None,
                      penalty=None, before_step=None, after_step=None,
                      active=torch.ones(1, dtype=torch.bool), active_l=[True])  # fmt: skip
    step.set_rates(torch.tensor([0.25], dtype=D))
    assert step.ref == 0.25 and opt.param_groups[0]["lr"] == 0.25
    assert step.lr_views[0].flatten().tolist() == [1.0]


class StepThenRaiseSGD(torch.optim.SGD):
    """SGD that takes its step, then refuses a non-finite gradient: the step is half done."""

    def step(self, closure=None):
        super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if not bool(torch.isfinite(p.grad).all()):
                    raise FloatingPointError("refused after stepping")


def test_an_optimizer_that_raises_after_stepping_is_undone_from_the_old_parameters(monkeypatch):
    """With an after_step hook that changes the parameters (a shrink), the step that raised
    is undone from the parameters before the optimizer step, not from the hook's copy of an
    earlier step: member 0 ends as it ends trained alone."""
    from smithing import optim
    from smithing._registry import Entry

    def factory(params, lr):
        return StepThenRaiseSGD(params, lr=lr)

    monkeypatch.setitem(optim.OPTIMIZERS._entries, "late-sgd", Entry("late-sgd", factory, ""))
    monkeypatch.setitem(optim._LR_LINEAR, "late-sgd", True)
    data = regression()
    x = data.train.x.clone()
    x[3, 1] = math.inf  # seed 0 meets it at batch 4, seed 3 at batch 3
    bad = Dataset("tiny", Split(x, data.train.y), data.valid, data.test, task="regression")

    def shrink(params, lrs):
        for v in params.values():
            v.mul_(0.9)

    def run(models, seeds, lrs):
        hooks = MemberHooks(after_step=shrink)
        return fit_ensemble(models, bad, seeds=seeds, lrs=lrs, epochs=1, batch_size=1,
                            optimizer="late-sgd", regularizer=hooks)  # fmt: skip

    pair = members(2)
    hs = run(pair, [0, 3], [0.1, 0.2])
    alone = members(1)
    ha = run(alone, [0], [0.1])
    assert (
        hs[0].message
        == ha[0].message
        == (
            "the training step raised FloatingPointError (refused after stepping) in epoch 1, "
            "batch 4: its loss is inf"
        )
    )
    for p, q in zip(pair[0].parameters(), alone[0].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=0)
    assert all(bool(torch.isfinite(p).all()) for p in pair[1].parameters())
    # member 0 holds its weights before batch 4: three SGD steps, each followed by the shrink
    w, b = torch.tensor(INITS[0][0], dtype=D), torch.tensor(INITS[0][1], dtype=D)
    perm = torch.randperm(5, generator=torch.Generator().manual_seed(0))
    for i in perm[:3].tolist():
        r = x[i] @ w + b - data.train.y[i]
        w, b = 0.9 * (w - 0.1 * 2 * r * x[i]), 0.9 * (b - 0.1 * 2 * r)
    assert_weights(pair[0], w, b)


def test_mid_epoch_saves_come_after_every_kth_batch(tmp_path):
    ck = Recording(tmp_path / "r.ckpt", min_interval_s=0, every_batches=3)
    fit_ensemble(members(2), regression(), seeds=[0, 1], lrs=[0.1, 0.1], epochs=2, batch_size=1,
                 checkpoint=ck)  # fmt: skip
    assert ck.positions == [3, None, 3, None]


def test_clip_norm_warns_on_a_nonfinite_gradient_and_the_member_diverges():
    """Example 3 (input 1e250, weight 0, residual 1e100): a finite loss, an overflowing
    gradient. The per-member clipping warns (it does not raise), the step makes the weights
    non-finite, and the members end as diverged by their losses, not by a raising step."""
    from smithing.train.diagnostics import NonFiniteGradientWarning

    data = regression()
    x, y = data.train.x.clone(), data.train.y.clone()
    x[3], y[3] = torch.tensor([1e250, 0.0], dtype=D), -1e100
    big = Dataset("tiny", Split(x, y), data.valid, data.test, task="regression")
    models = [linear((0.0, -0.1), 0.2), linear((0.0, 0.1), -0.2)]
    with pytest.warns(NonFiniteGradientWarning):
        hs = fit_ensemble(models, big, seeds=[0, 1], lrs=[0.1, 0.1], epochs=2, batch_size=5,
                          clip_norm=1.0)  # fmt: skip
    for h in hs:
        assert h.status == "diverged" and not h.message.startswith("the training step raised")


def test_a_frozen_members_momentum_does_not_move_it():
    """Member 1 overflows in epoch 1 and is frozen; its momentum buffer holds NaN/inf, so the
    optimizer's update of it is not finite: it keeps its (zeroed) weights exactly, and member 0
    trains as alone."""
    data = regression()
    pair = members(2)
    hs = fit_ensemble(pair, data, seeds=[0, 1], lrs=[0.1, 1e200], epochs=3, batch_size=1,
                      optimizer="momentum")  # fmt: skip
    assert hs[1].status == "diverged" and hs[1].epochs_run == 1
    assert all(bool(torch.isfinite(p).all()) for p in pair[1].parameters())
    alone = members(1)
    fit_ensemble(alone, data, seeds=[0], lrs=[0.1], epochs=3, batch_size=1, optimizer="momentum")
    for p, q in zip(pair[0].parameters(), alone[0].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=0)
