"""train_class_rbm and train_deep_hybrid with checkpoints: interrupted (at an epoch end, after a
step mid-epoch) then resumed, they end bitwise equal to the runs uninterrupted; a finished
run's checkpoint skips training."""

from __future__ import annotations

import pytest
import torch

from checkpoint_tools import CrashAfterSave, Interrupted
from smithing.checkpoint import Checkpointer, CheckpointError, read_checkpoint
from smithing.pretrain.hybrid import ClassRBM, DeepHybridRBM, train_class_rbm, train_deep_hybrid


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def toy_data(n=60, D=6, C=3, seed=0):
    base = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 1, 0]])
    protos = base.repeat(1, D // 6 + 1)[:C, :D].double()
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(C, (n,), generator=g)
    flip = torch.bernoulli(torch.full((n, D), 0.1), generator=g)
    return (protos[y] - flip).abs(), y


def _class_rbm_pcd():
    """PCD, unlabeled data (its own stream), validation, patience, a schedule, a generator."""
    x, y = toy_data(n=50)
    xu, _ = toy_data(n=35, seed=3)
    valid = toy_data(n=30, seed=1)

    def run(callback=(), checkpoint=None):
        torch.manual_seed(4)
        g = torch.Generator().manual_seed(5)
        m = ClassRBM(6, 5, 3, generator=g, dtype=torch.float64)
        hist = train_class_rbm(
            m, x, y, x_unlabeled=xu, valid=valid, objective="hybrid", alpha=0.1, beta=0.3,
            epochs=5, batch_size=12, lr=0.1, momentum=0.5, method="pcd", k=2, n_chains=7,
            early_stopping_patience=10, schedule=lambda e: 1 / (1 + e), generator=g,
            callbacks=callback, checkpoint=checkpoint,
        )  # fmt: skip
        return m, hist

    return run


def _deep_global_rng():
    """Two layers, CD, no generator (the global one samples and seeds the order)."""
    x, y = toy_data(n=45)

    def run(callback=(), checkpoint=None):
        torch.manual_seed(6)
        m = DeepHybridRBM([6, 7, 4], 3, dtype=torch.float64)
        hist = train_deep_hybrid(
            m, x, y, combine="mean", valid=(x, y), alpha=0.05, epochs=5, batch_size=10,
            lr=[0.2, 0.1], momentum=0.5, callbacks=callback, checkpoint=checkpoint,
        )  # fmt: skip
        return m, hist

    return run


CASES = {"class-rbm-pcd": _class_rbm_pcd, "deep-global-rng": _deep_global_rng}


def _raise_at(k):
    def cb(epoch, record, model):
        if epoch == k:
            raise Interrupted

    return cb


def _same(a, b):
    (ma, ha), (mb, hb) = a, b
    sa, sb = ma.state_dict(), mb.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in ha.epochs] == [
        {k: v for k, v in r.items() if k not in drop} for r in hb.epochs
    ]
    fields = ("status", "stop_reason", "message", "best_epoch", "config", "final")
    assert [getattr(ha, f) for f in fields] == [getattr(hb, f) for f in fields]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("where", ["epoch-end", "mid-epoch"])
def test_resumes_bitwise(tmp_path, case, where):
    run = CASES[case]()
    ref = run()
    after_ref = torch.rand(2)
    path = tmp_path / "h.ckpt"
    with pytest.raises(Interrupted):
        if where == "epoch-end":
            run(callback=[_raise_at(3)], checkpoint=Checkpointer(path, min_interval_s=0))
        else:
            steps = ref[1].config["steps_per_epoch"]
            run(checkpoint=CrashAfterSave(path, 2 * steps + 2, min_interval_s=0, every_batches=1))
    state = read_checkpoint(path)
    assert state["epoch"] == 3 and (state["step"] == 0) == (where == "epoch-end")
    ck = Checkpointer(path, min_interval_s=0, every_batches=1)
    _same(run(checkpoint=ck), ref)
    assert ck.loaded_from == path and torch.equal(torch.rand(2), after_ref)

    ck = Checkpointer(path, min_interval_s=0)
    _same(run(checkpoint=ck), ref)  # finished: restored, not trained again
    assert ck.saves == 0 and torch.equal(torch.rand(2), after_ref)


def test_checkpointing_does_not_change_the_numbers(tmp_path):
    run = _class_rbm_pcd()
    ck = Checkpointer(tmp_path / "c", min_interval_s=0, every_batches=2)
    _same(run(checkpoint=ck), run())
    assert ck.saves > 5


def test_refuses_another_runs_checkpoint(tmp_path):
    x, y = toy_data()
    path = tmp_path / "h.ckpt"
    train_class_rbm(ClassRBM(6, 4, 3), x, y, epochs=1, checkpoint=path)
    with pytest.raises(CheckpointError, match="belongs to another run"):
        train_class_rbm(ClassRBM(6, 4, 3), x, y, epochs=1, alpha=0.5, checkpoint=path)
    with pytest.raises(CheckpointError, match="written by 'train_class_rbm'"):
        train_deep_hybrid(DeepHybridRBM([6, 4], 3), x, y, epochs=1, checkpoint=path)
