"""What ``train_class_rbm`` and ``train_deep_hybrid`` hand to the shared loop (found by
mutation testing): the deprecated aliases' exact messages, named and callable schedules over the
run's own epoch count, ``device=``, and every argument ``train_deep_hybrid`` passes on
(unlabeled data, validation, optimizer options, early stopping, progress, the ``combine`` in
the checkpoint's signature)."""

from __future__ import annotations

import warnings

import pytest
import torch

from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer, read_checkpoint
from smithing.pretrain.hybrid import ClassRBM, DeepHybridRBM, train_class_rbm, train_deep_hybrid
from tensortools import same_parameters

D = torch.float64
TRAINERS = ["train_class_rbm", "train_deep_hybrid"]


def data(seed=0, n=6):
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((n, 4), 0.5, dtype=D), generator=g)
    return x, torch.arange(n) % 3


def model(trainer, seed=1):
    g = torch.Generator().manual_seed(seed)
    if trainer == "train_class_rbm":
        return ClassRBM(4, 3, 3, init_scale=0.5, dtype=D, generator=g)
    return DeepHybridRBM([4, 3, 2], 3, init_scale=0.5, dtype=D, generator=g)


def fit(trainer, m, x, y, **kw):
    fn = train_class_rbm if trainer == "train_class_rbm" else train_deep_hybrid
    kw.setdefault("generator", torch.Generator().manual_seed(2))
    return fn(m, x, y, **kw)


def rates(h):  # the first layer's rate per epoch (a deep hybrid records one per layer)
    return [r[0] if isinstance(r, list) else r for r in h["lr"]]


@pytest.mark.parametrize("trainer", TRAINERS)
def test_the_aliases_messages(trainer):
    x, y = data()
    f = lambda e: 0.5  # noqa: E731
    with pytest.warns(DeprecationWarning) as rec:
        fit(trainer, model(trainer), x, y, epochs=1, batch_size=3, lr_schedule=f,
            callback=lambda e, r: None)  # fmt: skip
    assert sorted(str(w.message) for w in rec) == [
        f"{trainer}(callback=f) is deprecated; use callbacks=[g] with g(epoch, record, model) "
        "(1-based epoch) instead",
        f"{trainer}(lr_schedule=...) is deprecated; use schedule= instead",
    ]
    with pytest.raises(ValueError) as err:
        fit(trainer, model(trainer), x, y, lr_schedule=f, schedule=f)
    assert str(err.value) == (
        f"{trainer}: give schedule= or its deprecated alias lr_schedule=, not both"
    )


@pytest.mark.parametrize("trainer", TRAINERS)
def test_named_and_callable_schedules(trainer):
    x, y = data()
    h = fit(trainer, model(trainer), x, y, epochs=3, batch_size=3, lr=0.2, schedule="step",
            schedule_options={"step_size": 1, "gamma": 0.5})  # fmt: skip
    assert rates(h) == pytest.approx([0.2, 0.1, 0.05], rel=1e-15)
    # cosine over the run's own epoch count: half the rate at epoch 3 of 4
    h = fit(trainer, model(trainer), x, y, epochs=4, batch_size=3, lr=0.2, schedule="cosine")
    assert rates(h)[2] == pytest.approx(0.1, rel=1e-15)
    a, b = model(trainer), model(trainer)
    fit(trainer, a, x, y, epochs=2, batch_size=3, lr=0.2, schedule=lambda e: [1.0, 0.5][e])
    fit(trainer, b, x, y, epochs=2, batch_size=3, lr=0.2)
    assert not same_parameters(a, b)  # the second epoch's steps were halved
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        c = model(trainer)
        fit(trainer, c, x, y, epochs=2, batch_size=3, lr=0.2, lr_schedule=lambda e: [1.0, 0.5][e])
    assert same_parameters(a, c)


@pytest.mark.parametrize("trainer", TRAINERS)
def test_device_and_what_callbacks_and_progress_receive(trainer):
    x, y = data()
    a, b = model(trainer), model(trainer)
    seen = []
    ha = fit(trainer, a, x, y, epochs=2, batch_size=3, device="cpu",
             progress=lambda e, r: seen.append(("p", e, r)),
             callbacks=[lambda e, r, m: seen.append(("c", e, m))])  # fmt: skip
    fit(trainer, b, x, y, epochs=2, batch_size=3)
    assert same_parameters(a, b)
    assert seen == [("p", 1, ha.epochs[0]), ("c", 1, a), ("p", 2, ha.epochs[1]), ("c", 2, a)]
    assert seen[1][2] is a


def test_deep_hybrid_passes_on_unlabeled_data_and_validation():
    x, y = data()
    xu = data(seed=3, n=8)[0]
    a, b = model("train_deep_hybrid"), model("train_deep_hybrid")
    kw = dict(epochs=1, batch_size=3, objective="hybrid", alpha=0.5, beta=0.5)
    h = fit("train_deep_hybrid", a, x, y, x_unlabeled=xu, valid=(x[:3], y[:3]), **kw)
    fit("train_deep_hybrid", b, x, y, **kw)
    assert not same_parameters(a, b)  # the unlabeled term took part
    assert h.config["steps_per_epoch"] == 3  # max(ceil(6 / 3), ceil(8 / 3))
    with torch.no_grad():
        lp = a.log_proba(x[:3], "top")
    assert h.epochs[0]["valid_loss"] == pytest.approx(float(-lp.gather(-1, y[:3, None]).mean()))


def test_deep_hybrid_passes_on_optimizer_options_and_early_stopping():
    x, y = data()
    runs = []
    for opts in ({"momentum": 0.0}, {"momentum": 0.9}):
        m = model("train_deep_hybrid")
        fit("train_deep_hybrid", m, x, y, epochs=2, batch_size=3, optimizer="momentum",
            optimizer_options=opts)  # fmt: skip
        runs.append(m)
    assert not same_parameters(*runs)
    m = model("train_deep_hybrid")
    stop = EarlyStopping("train_loss", patience=1, min_delta=1e9)  # nothing counts as better
    h = fit("train_deep_hybrid", m, x, y, epochs=5, batch_size=3, early_stopping=stop)
    assert h.stop_reason == "patience" and h.epochs_run == 2


def test_deep_hybrid_combine_is_in_the_checkpoint_signature(tmp_path):
    x, y = data()
    ck = Checkpointer(tmp_path / "d.ckpt", min_interval_s=0)
    fit("train_deep_hybrid", model("train_deep_hybrid"), x, y, epochs=1, batch_size=3,
        combine="mean", checkpoint=ck)  # fmt: skip
    state = read_checkpoint(ck.path)
    assert state["trainer"] == "train_deep_hybrid" and state["signature"]["combine"] == "mean"
    ck = Checkpointer(tmp_path / "c.ckpt", min_interval_s=0)
    fit("train_class_rbm", model("train_class_rbm"), x, y, epochs=1, batch_size=3, checkpoint=ck)
    state = read_checkpoint(ck.path)
    assert state["trainer"] == "train_class_rbm" and "combine" not in state["signature"]
