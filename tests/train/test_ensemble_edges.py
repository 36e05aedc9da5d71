"""fit_ensemble's edges left by its first mutation run (issue 15): the default epoch count,
optimizer options, the train-set evaluation with the run's task and loss, the records given to
``progress`` for a member frozen by a raising step, the mid-epoch saves at the end of the data,
and the checkpoint's parts (buffers, crash messages, the generators' replay check, a file
without a ``crashed`` part)."""

from __future__ import annotations

import math

import pytest
import torch
from test_ensemble_exact import RaisingSGD, members
from tiny_regression import regression
from torch import nn
from torch.nn import functional as F

from checkpoint_tools import Interrupted, Recording, stop_after_steps
from smithing.checkpoint import Checkpointer
from smithing.checkpoint.files import CheckpointError, read_checkpoint, save_checkpoint
from smithing.data.base import Dataset, Split
from smithing.train import fit
from smithing.train.ensemble import fit_ensemble

D = torch.float64


def test_twenty_epochs_by_default():
    hs = fit_ensemble(members(1), regression(), seeds=[0], lrs=[0.01])
    assert hs[0].epochs_run == 20 and hs[0].config["epochs"] == 20


def test_the_message_for_per_member_rates_with_an_optimizer_not_linear_in_lr(monkeypatch):
    from smithing import optim

    monkeypatch.setitem(optim._LR_LINEAR, "sgd", False)
    with pytest.raises(ValueError) as info:
        fit_ensemble(members(2), regression(), seeds=[0, 1], lrs=[0.1, 0.2], epochs=1)
    assert str(info.value) == (
        "lrs=[0.1, 0.2] is invalid: expected one learning rate for all members with optimizer "
        "'sgd': its update is not linear in the learning rate (smithing.optim.lr_scales_update), "
        "so one step over the stacked members cannot give each member its own rate; group the "
        "members by learning rate or train them with fit"
    )


def test_optimizer_options_reach_the_optimizer():
    """Momentum 0.3 (not the default 0.9): each member equals fit with the same options."""
    data = regression()
    models = members(2)
    kw = dict(epochs=3, batch_size=2, optimizer="momentum", optimizer_options={"momentum": 0.3})
    fit_ensemble(models, data, seeds=[0, 1], lrs=[0.1, 0.05], **kw)
    default = members(2)
    fit_ensemble(default, data, seeds=[0, 1], lrs=[0.1, 0.05], epochs=3, batch_size=2,
                 optimizer="momentum")  # fmt: skip
    for m, (seed, lr) in enumerate([(0, 0.1), (1, 0.05)]):
        alone = members(2)[m]
        fit(alone, data, seed=seed, lr=lr, **kw)
        for p, q in zip(models[m].parameters(), alone.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
        assert not torch.equal(models[m].weight, default[m].weight)


def classification(n=6):
    g = torch.Generator().manual_seed(4)

    def split(k):
        return Split(
            torch.randn(k, 2, generator=g, dtype=D), torch.randint(0, 3, (k,), generator=g)
        )

    return Dataset("tiny3", split(n), split(4), split(3), task="classification")


def three_way(seed):
    torch.manual_seed(seed)
    return nn.Linear(2, 3, dtype=D)


def test_eval_train_uses_the_runs_task_and_loss():
    """With a custom loss (cross-entropy with label smoothing), the train-set evaluation's loss
    is that loss and its error the classification error: as fit records them."""

    def smooth(out, y):
        return F.cross_entropy(out, y, label_smoothing=0.2)

    data = classification()
    models = [three_way(s) for s in (0, 1)]
    hs = fit_ensemble(models, data, seeds=[0, 1], lrs=[0.5, 0.2], epochs=2, batch_size=2,
                      loss=smooth, eval_train=True)  # fmt: skip
    for m, (seed, lr) in enumerate([(0, 0.5), (1, 0.2)]):
        h = fit(three_way(seed), data, seed=seed, lr=lr, epochs=2, batch_size=2, loss=smooth,
                eval_train=True)  # fmt: skip
        for got, want in zip(hs[m].epochs, h.epochs):
            for k in ("train_eval_loss", "train_error"):
                assert got[k] == pytest.approx(want[k], rel=1e-12, abs=1e-15), k
        # the error is a classification error (a multiple of 1/6), not the loss
        assert hs[m].epochs[-1]["train_error"] * 6 == pytest.approx(
            round(hs[m].epochs[-1]["train_error"] * 6)
        )
        assert hs[m].epochs[-1]["train_eval_loss"] != hs[m].epochs[-1]["train_error"]


def bad_example_data():
    data = regression()
    x = data.train.x.clone()
    x[3, 1] = math.inf
    return Dataset("tiny", Split(x, data.train.y), data.valid, data.test, task="regression")


def crash_batches(seeds):
    """The batch (1-based, batch size 1) at which each seed's order meets example 3."""
    return [
        int((torch.randperm(5, generator=torch.Generator().manual_seed(s)) == 3).nonzero()) + 1
        for s in seeds
    ]


@pytest.fixture
def raising_sgd(monkeypatch):
    from smithing import optim
    from smithing._registry import Entry

    monkeypatch.setitem(optim.OPTIMIZERS._entries, "raising-sgd",
                        Entry("raising-sgd", lambda p, lr: RaisingSGD(p, lr=lr), ""))  # fmt: skip
    monkeypatch.setitem(optim._LR_LINEAR, "raising-sgd", True)
    return "raising-sgd"


def test_progress_gets_the_record_of_a_member_frozen_by_a_raising_step(raising_sgd):
    seen = []
    hs = fit_ensemble(members(2), bad_example_data(), seeds=[0, 3], lrs=[0.1, 0.2], epochs=2,
                      batch_size=1, optimizer=raising_sgd,
                      progress=lambda e, recs: seen.append(recs))  # fmt: skip
    assert len(seen) == 1  # both frozen in epoch 1: the run ends
    for m in range(2):
        assert seen[0][m] is hs[m].epochs[0] and math.isnan(seen[0][m]["train_loss"])


def test_no_mid_epoch_save_after_the_last_batch(tmp_path):
    """4 examples in batches of 2, a save due after every batch: one mid-epoch save (after
    batch 1); after batch 2 the epoch is over and its end is saved instead."""
    ck = Recording(tmp_path / "r.ckpt", min_interval_s=0, every_batches=1)
    fit_ensemble(members(2), regression(n_train=4), seeds=[0, 1], lrs=[0.1, 0.1], epochs=2,
                 batch_size=2, checkpoint=ck)  # fmt: skip
    assert ck.positions == [2, None, 2, None]


def batchnorm_members(seeds):
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 1)))
    return out


def data32(n=8):
    g = torch.Generator().manual_seed(6)

    def split(k):
        return Split(torch.randn(k, 2, generator=g), torch.randn(k, generator=g))

    return Dataset("bn", split(n), split(4), split(4), task="regression")


def test_a_resumed_run_restores_the_buffers(tmp_path):
    """BatchNorm members stopped in epoch 3 and resumed end with the running statistics of the
    run that was not stopped (the fresh modules' statistics are those of a new BatchNorm)."""
    kw = dict(seeds=[0, 1], lrs=[0.05, 0.1], epochs=4, batch_size=4)
    ref = batchnorm_members([0, 1])
    fit_ensemble(ref, data32(), **kw)
    path = tmp_path / "bn.ckpt"
    with pytest.raises(Interrupted):
        fit_ensemble(batchnorm_members([0, 1]), data32(), **kw, hooks=stop_after_steps(5),
                     checkpoint=Checkpointer(path, min_interval_s=0))  # fmt: skip
    assert read_checkpoint(path)["epoch"] == 3
    fresh = batchnorm_members([0, 1])
    fit_ensemble(fresh, data32(), **kw, checkpoint=Checkpointer(path, min_interval_s=0))
    for a, b in zip(ref, fresh):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k


def interrupted_after_a_crash(tmp_path, raising_sgd):
    """A run of two members where the first to meet the bad example is frozen mid-epoch, a
    mid-epoch save follows, and the run is stopped before the epoch ends."""
    seeds = [2, 3]  # example 3 comes at batch 1 for seed 2, at batch 3 for seed 3
    first = min(crash_batches(seeds))
    assert first < max(crash_batches(seeds)) and first <= 3
    kw = dict(seeds=seeds, lrs=[0.1, 0.2], epochs=2, batch_size=1, optimizer=raising_sgd)
    path = tmp_path / "c.ckpt"
    with pytest.raises(Interrupted):
        fit_ensemble(members(2), bad_example_data(), **kw, hooks=stop_after_steps(first),
                     checkpoint=Checkpointer(path, min_interval_s=0, every_batches=1))  # fmt: skip
    return path, kw


def test_a_crash_message_survives_a_mid_epoch_resume(tmp_path, raising_sgd):
    ref = fit_ensemble(members(2), bad_example_data(), seeds=[2, 3], lrs=[0.1, 0.2], epochs=2,
                       batch_size=1, optimizer=raising_sgd)  # fmt: skip
    path, kw = interrupted_after_a_crash(tmp_path, raising_sgd)
    state = read_checkpoint(path)
    assert state["position"] is not None and len(state["crashed"]) == 1
    hs = fit_ensemble(members(2), bad_example_data(), **kw,
                      checkpoint=Checkpointer(path, min_interval_s=0))  # fmt: skip
    for a, b in zip(ref, hs):
        assert (a.status, a.stop_reason, a.message) == (b.status, b.stop_reason, b.message)
        assert a.status == "diverged" and "raised FloatingPointError" in a.message


def test_a_checkpoint_without_a_crashed_part_resumes(tmp_path):
    path = tmp_path / "old.ckpt"
    kw = dict(seeds=[0, 1], lrs=[0.1, 0.1], epochs=3, batch_size=2)
    ref = members(2)
    fit_ensemble(ref, regression(), **kw)
    with pytest.raises(Interrupted):
        fit_ensemble(members(2), regression(), **kw, hooks=stop_after_steps(4),
                     checkpoint=Checkpointer(path, min_interval_s=0))  # fmt: skip
    state = read_checkpoint(path)
    del state["crashed"]  # as an older version wrote it
    save_checkpoint(path, state, keep_previous=False)
    fresh = members(2)
    fit_ensemble(fresh, regression(), **kw, checkpoint=Checkpointer(path, min_interval_s=0))
    for a, b in zip(ref, fresh):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_generators_that_do_not_replay_are_refused(tmp_path):
    """A mid-epoch checkpoint whose members' generators were swapped: redrawing the epoch's
    orders from the epoch-start states does not end at the saved states."""
    path = tmp_path / "g.ckpt"
    kw = dict(seeds=[0, 1], lrs=[0.1, 0.1], epochs=2, batch_size=1)
    with pytest.raises(Interrupted):
        fit_ensemble(members(2), regression(), **kw, hooks=stop_after_steps(2),
                     checkpoint=Checkpointer(path, min_interval_s=0, every_batches=1))  # fmt: skip
    state = read_checkpoint(path)
    assert state["position"] is not None
    state["generators"] = state["generators"][::-1]
    save_checkpoint(path, state, keep_previous=False)
    with pytest.raises(CheckpointError) as info:
        fit_ensemble(members(2), regression(), **kw,
                     checkpoint=Checkpointer(path, min_interval_s=0))  # fmt: skip
    assert str(info.value).endswith("the data-order generators do not replay to their saved states")


def test_float64_members_are_clipped_exactly_as_fit_clips_them():
    """Per-member radii 0.3 and 0.05 on float64 members, gradients large enough to be clipped
    at every step: each member equals fit with its own clip_norm to float64 precision (the
    norms and radii are taken in float64, not float32)."""
    data = regression(x_scale=30.0)
    models = members(2)
    kw = dict(epochs=2, batch_size=2)
    fit_ensemble(models, data, seeds=[0, 1], lrs=[0.01, 0.02], clip_norm=[0.3, 0.05], **kw)
    for m, (seed, lr, c) in enumerate([(0, 0.01, 0.3), (1, 0.02, 0.05)]):
        alone = members(2)[m]
        fit(alone, data, seed=seed, lr=lr, clip_norm=c, **kw)
        for p, q in zip(models[m].parameters(), alone.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-13, atol=1e-15)


def test_a_member_diverged_before_any_best_keeps_its_frozen_weights():
    """restore_best_weights with no best epoch recorded (member 1 diverges in epoch 1): its
    weights are the frozen ones, not the weights it started from."""
    from smithing.callbacks import EarlyStopping

    data = regression(x_scale=1e10)
    models = members(2)
    start = [m.weight.detach().clone() for m in models]

    def stopper():
        return EarlyStopping(patience=5, restore_best_weights=True)

    hs = fit_ensemble(models, data, seeds=[0, 1], lrs=[1e-25, 1e30], epochs=3, batch_size=1,
                      early_stopping=stopper)  # fmt: skip
    assert hs[1].status == "diverged" and hs[1].epochs_run == 1
    assert not torch.equal(models[1].weight, start[1])
    assert all(bool(torch.isfinite(p).all()) for p in models[1].parameters())
