"""train_rbm's edges that the exact tests left open (found by mutation testing): its defaults,
the deprecated aliases, the dtype and device handling of ``data`` / ``valid_data``, the
precision and compile switches, the checkpoint's signature and parts, when it saves, what the
callbacks receive, and the state it leaves behind."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch

import smithing.pretrain.rbm.training as training
from smithing.checkpoint import Checkpointer, read_checkpoint
from smithing.pretrain.rbm import BernoulliRBM, train_rbm
from smithing.pretrain.rbm.sampling import PersistentChains
from smithing.pretrain.rbm.training import _momentum_schedule
from tensortools import gen, same_parameters

D = torch.float64


def rbm_and_data(seed=0, members=None, nv=4, nh=3, n=6, dtype=D):
    g = torch.Generator().manual_seed(seed)
    rbm = BernoulliRBM(nv, nh, members=members, init_std=0.5, dtype=dtype, generator=g)
    data = torch.bernoulli(torch.full((n, nv), 0.5, dtype=dtype), generator=g)
    return rbm, data


def test_the_documented_defaults():
    params = inspect.signature(train_rbm).parameters
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    assert defaults == {
        "epochs": 10, "lr": 0.1, "batch_size": 100, "optimizer": "sgd",
        "optimizer_options": None, "schedule": None, "schedule_options": None, "method": "cd",
        "k": 1, "n_chains": None, "chains": None, "momentum": 0.0, "weight_decay": 0.0,
        "sparsity_target": None, "sparsity_cost": 0.0, "sparsity_damping": 0.9,
        "negative_visible": "sample", "binarize_batches": False, "valid_data": None,
        "monitor_size": 1000, "monitor_reconstruction": True, "generator": None, "callbacks": (),
        "progress": None,
        "device": None, "checkpoint": None, "lr_schedule": None, "callback": None,
        "precision": None, "compile": None,
    }  # fmt: skip


def test_the_defaults_in_use():
    """epochs 10, batch_size 100 and monitor_size 1000 as a call without them sees them: 1,001
    examples make 11 batches of 100 (10 of 101) and a monitor of 1,000 (not 1,001)."""
    rbm, data = rbm_and_data(seed=19, n=1001)
    chains = PersistentChains.init(rbm, 100, generator=gen(0))
    h = train_rbm(rbm, data, method="pcd", chains=chains, generator=gen(1))
    assert len(h.epochs) == 10 and chains.updates == 10 * 11
    with torch.no_grad():
        want = float(rbm.free_energy(data[:1000]).mean())
    assert h.epochs[-1]["free_energy_train"] == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("momentum", [1.0, 1.5])
def test_momentum_of_one_or_more_is_refused_by_the_schedule_itself(momentum):
    with pytest.raises(ValueError) as err:
        _momentum_schedule(momentum)
    assert str(err.value) == f"momentum={momentum} is invalid: expected a number in [0, 1)"


def test_lr_schedule_is_a_deprecated_alias_of_schedule():
    a, data = rbm_and_data(seed=1)
    b, _ = rbm_and_data(seed=1)
    f = lambda e: [1.0, 0.5][e]  # noqa: E731
    with pytest.warns(DeprecationWarning) as rec:
        ha = train_rbm(a, data, epochs=2, batch_size=3, lr_schedule=f, generator=gen(1))
    assert [str(w.message) for w in rec] == [
        "train_rbm(lr_schedule=...) is deprecated; use schedule= instead"
    ]
    hb = train_rbm(b, data, epochs=2, batch_size=3, schedule=f, generator=gen(1))
    assert ha["lr"] == hb["lr"] == [0.1, 0.05] and same_parameters(a, b)
    with pytest.raises(ValueError) as err:
        train_rbm(a, data, lr_schedule=f, schedule=f)
    assert (
        str(err.value) == "train_rbm: give schedule= or its deprecated alias lr_schedule=, not both"
    )


def test_callback_is_a_deprecated_single_callback_with_0_based_epochs():
    rbm, data = rbm_and_data(seed=2)
    seen = []
    with pytest.warns(DeprecationWarning) as rec:
        h = train_rbm(rbm, data, epochs=3, batch_size=3, generator=gen(1),
                      callback=lambda e, r: seen.append((e, r)) or e == 1)  # fmt: skip
    assert [str(w.message) for w in rec] == [
        "train_rbm(callback=f) is deprecated; use callbacks=[g] with g(epoch, record, model) "
        "(1-based epoch) instead"
    ]
    assert [e for e, _ in seen] == [0, 1] and [r for _, r in seen] == h.epochs
    assert h.stop_reason == "callback" and h.epochs_run == 2


def test_progress_and_callbacks_receive_the_record_and_the_rbm():
    rbm, data = rbm_and_data(seed=3)
    got = []
    h = train_rbm(rbm, data, epochs=2, batch_size=3, generator=gen(1),
                  progress=lambda e, r: got.append(("p", e, r)),
                  callbacks=[lambda e, r, m: got.append(("c", e, r, m))])  # fmt: skip
    assert got == [("p", 1, h.epochs[0]), ("c", 1, h.epochs[0], rbm),
                   ("p", 2, h.epochs[1]), ("c", 2, h.epochs[1], rbm)]  # fmt: skip
    assert all(x[2] is r for x, r in zip(got, [h.epochs[0]] * 2 + [h.epochs[1]] * 2))
    assert got[1][3] is rbm and got[3][3] is rbm


def test_a_named_schedule_gets_the_epoch_count_and_its_options():
    rbm, data = rbm_and_data(seed=4)
    h = train_rbm(rbm, data, epochs=4, batch_size=3, lr=0.2, schedule="step",
                  schedule_options={"step_size": 2, "gamma": 0.5}, generator=gen(1))  # fmt: skip
    assert h["lr"] == pytest.approx([0.2, 0.2, 0.1, 0.1], rel=1e-15)
    # "cosine" decays over the run's own epoch count: to half the rate at epoch 3 of 4, at
    # epoch 2 of 2
    h4 = train_rbm(rbm, data, epochs=4, batch_size=3, lr=0.2, schedule="cosine", generator=gen(1))
    h2 = train_rbm(rbm, data, epochs=2, batch_size=3, lr=0.2, schedule="cosine", generator=gen(1))
    assert h4["lr"][2] == h2["lr"][1] == pytest.approx(0.1, rel=1e-15)
    assert h4["lr"][1] == pytest.approx(0.1 + 0.1 * 2**-0.5, rel=1e-15)


def test_float32_data_trains_a_float64_rbm_as_float64_data_does():
    a, data = rbm_and_data(seed=5)
    b, _ = rbm_and_data(seed=5)
    ha = train_rbm(a, data, epochs=2, batch_size=3, valid_data=data[:2], generator=gen(1))
    hb = train_rbm(b, data.float(), epochs=2, batch_size=3, valid_data=data[:2].float(),
                   generator=gen(1))  # fmt: skip
    assert same_parameters(a, b) and a.W.dtype == D
    assert ha["free_energy_valid"] == hb["free_energy_valid"]


def test_device_moves_the_rbm_and_both_data_sets():
    a, data = rbm_and_data(seed=6)
    b, _ = rbm_and_data(seed=6)
    ha = train_rbm(a, data, epochs=2, batch_size=3, valid_data=data[:3], generator=gen(1))
    hb = train_rbm(b, data, epochs=2, batch_size=3, valid_data=data[:3], device="cpu",
                   generator=gen(1))  # fmt: skip
    assert same_parameters(a, b)
    assert hb["free_energy_valid"] == ha["free_energy_valid"] and len(ha["free_energy_valid"]) == 2
    h = train_rbm(b, data, epochs=1, batch_size=3, device=torch.device("cpu"), generator=gen(1))
    assert "free_energy_valid" not in h.epochs[0]


def test_data_on_another_device_is_refused():
    rbm, _ = rbm_and_data()
    with pytest.raises(ValueError) as err:
        train_rbm(rbm, torch.zeros(6, 4, dtype=D, device="meta"))
    assert str(err.value) == (
        "data.device=device(type='meta') is invalid: expected the RBM's device cpu"
    )


def test_bf16_precision_runs_the_conditionals_in_bfloat16_and_keeps_the_rbms_dtype():
    # CPU autocast lowers float32 matmuls to bfloat16 (it leaves float64 alone)
    a, data = rbm_and_data(seed=7, dtype=torch.float32)
    b, _ = rbm_and_data(seed=7, dtype=torch.float32)
    train_rbm(a, data, epochs=1, batch_size=3, generator=gen(1))
    h = train_rbm(b, data, epochs=1, batch_size=3, precision="bf16", generator=gen(1))
    assert b.W.dtype == torch.float32 and isinstance(h.epochs[0]["recon_error"], float)
    assert not torch.equal(a.W, b.W)  # the conditionals were rounded to bfloat16
    # the rounding is bfloat16's (8 bits of mantissa): small next to the update itself
    torch.testing.assert_close(a.W, b.W, rtol=0, atol=1e-3)


def test_compile_passes_both_conditionals_through_compile_step(monkeypatch):
    calls = []

    def fake_compile_step(fn, device):
        calls.append((fn, device))
        return fn

    monkeypatch.setattr(training, "compile_step", fake_compile_step)
    a, data = rbm_and_data(seed=8)
    b, _ = rbm_and_data(seed=8)
    train_rbm(a, data, epochs=1, batch_size=3, generator=gen(1))
    train_rbm(b, data, epochs=1, batch_size=3, compile=True, generator=gen(1))
    assert calls == [(b.hidden_probs, b.W.device), (b.visible_mean, b.W.device)]
    assert same_parameters(a, b)
    calls.clear()
    train_rbm(b, data, epochs=1, batch_size=3, compile=False, generator=gen(1))
    assert calls == []


def test_ready_optimizer_records_its_own_learning_rate_not_the_rbms_dtype():
    rbm, data = rbm_and_data(seed=9, dtype=torch.float32)
    h = train_rbm(rbm, data, epochs=1, batch_size=3, lr=0.1, optimizer="adam", generator=gen(1))
    assert h.epochs[0]["lr"] == 0.1  # the optimizer's float, not float32(0.1)
    h = train_rbm(rbm, data, epochs=1, batch_size=3, lr=0.1, generator=gen(1))
    assert h.epochs[0]["lr"] == float(torch.tensor(0.1, dtype=torch.float32))


def test_recon_error_of_a_single_batch_epoch():
    rbm, data = rbm_and_data(seed=10, n=5)
    W, b, c = (t.detach().clone() for t in (rbm.W, rbm.b, rbm.c))
    g = gen(11)
    v0 = data[torch.randperm(5, generator=g)]
    h = torch.bernoulli(torch.sigmoid(v0 @ W + c), generator=g)
    want = ((v0 - torch.sigmoid(h @ W.T + b)) ** 2).mean()
    hist = train_rbm(rbm, data, epochs=1, batch_size=5, generator=gen(11))
    assert hist.epochs[0]["recon_error"] == pytest.approx(float(want), rel=1e-12)


def test_sparsity_without_a_target_is_no_penalty():
    a, data = rbm_and_data(seed=12)
    b, _ = rbm_and_data(seed=12)
    train_rbm(a, data, epochs=1, batch_size=3, generator=gen(1))
    train_rbm(b, data, epochs=1, batch_size=3, sparsity_cost=0.5, generator=gen(1))
    assert same_parameters(a, b)


def test_ensemble_sparsity_penalty_is_per_member():
    """Members with nv != nh: the penalty's dW is each member's drive (nv) times its d (nh)."""
    rbm, data = rbm_and_data(seed=13, members=2, nv=4, nh=3)
    ref, _ = rbm_and_data(seed=13, members=2, nv=4, nh=3)
    W0, c0 = rbm.W.detach().clone(), rbm.c.detach().clone()
    kw = dict(epochs=1, batch_size=6, lr=0.1)  # one batch: the means ignore the order
    train_rbm(rbm, data, sparsity_target=0.1, sparsity_cost=0.5, generator=gen(14), **kw)
    train_rbm(ref, data, generator=gen(14), **kw)
    q = torch.sigmoid(data @ W0 + c0[:, None, :]).mean(-2)  # (2, nh)
    dW = -0.1 * 0.5 * data.mean(0)[None, :, None] * (q - 0.1)[:, None, :]
    torch.testing.assert_close(rbm.W.detach() - ref.W.detach(), dW, rtol=1e-9, atol=1e-13)


def test_no_gradients_are_left_on_the_parameters():
    rbm, data = rbm_and_data(seed=15)
    train_rbm(rbm, data, epochs=1, batch_size=3, generator=gen(1))
    assert all(p.grad is None for p in rbm.parameters())


def test_the_checkpoint_signature_and_parts(tmp_path):
    ck = Checkpointer(tmp_path / "r.ckpt", min_interval_s=0)
    rbm, data = rbm_and_data(seed=16)
    chains = PersistentChains.init(rbm, 2, generator=gen(0))
    train_rbm(rbm, data, epochs=2, batch_size=3, lr=0.05, method="pcd", k=2, chains=chains,
              sparsity_target=0.2, sparsity_cost=0.1, optimizer="adam",
              optimizer_options={"eps": 1e-6}, monitor_reconstruction=False, checkpoint=ck,
              generator=gen(1))  # fmt: skip
    state = read_checkpoint(ck.path)
    assert state["trainer"] == "train_rbm"
    assert state["signature"] == {
        "epochs": 2,
        "batch_size": 3,
        "method": "pcd",
        "k": 2,
        "n_chains": [2, 4],
        "data": [6, 4],
        "visible_type": "bernoulli",
        "parameters": [["W", [4, 3]], ["b", [4]], ["c", [3]]],
        "lr": 0.05,
        "weight_decay": 0.0,
        "monitor_reconstruction": False,
        "sparsity": [0.2, 0.1, 0.9],
        "negative_visible": "sample",
        "generator": True,
        "optimizer": "adam",
        "optimizer_options": "{'eps': 1e-06}",
    }
    assert set(state) == {"trainer", "signature", "epoch", "position", "finished", "elapsed",
                          "rbm", "optimizer", "chains", "q", "generator", "history",
                          "rng"}  # fmt: skip
    assert set(state["rbm"]) == {"W", "b", "c"} and torch.equal(state["rbm"]["W"], rbm.W)
    assert torch.equal(state["chains"]["v"], chains.v) and state["chains"]["updates"] == 4
    assert state["q"].shape == (3,)
    ck = Checkpointer(tmp_path / "s.ckpt", min_interval_s=0)
    rbm, data = rbm_and_data(seed=16)
    opt = torch.optim.SGD(rbm.parameters(), lr=0.1)
    train_rbm(rbm, data, epochs=1, batch_size=3, optimizer=opt, checkpoint=ck)
    sig = read_checkpoint(ck.path)["signature"]
    assert (sig["optimizer"], sig["n_chains"], sig["generator"]) == ("SGD", None, False)
    assert "monitor_reconstruction" not in sig and sig["optimizer_options"] == "{}"


def test_a_resumed_pcd_run_restores_the_callers_chains(tmp_path):
    ck = Checkpointer(tmp_path / "c.ckpt", min_interval_s=0)
    rbm, data = rbm_and_data(seed=17)
    chains = PersistentChains.init(rbm, 2, generator=gen(0))
    train_rbm(rbm, data, epochs=2, batch_size=3, method="pcd", chains=chains, checkpoint=ck,
              generator=gen(1))  # fmt: skip
    fresh = PersistentChains.init(rbm, 2, generator=gen(5))
    # a finished run: nothing to train, and the chains come back from the checkpoint
    train_rbm(rbm, data, epochs=2, batch_size=3, method="pcd", chains=fresh, checkpoint=ck,
              generator=gen(1))  # fmt: skip
    assert torch.equal(fresh.v, chains.v) and fresh.updates == chains.updates == 4


@pytest.mark.parametrize(
    "min_interval_s, epochs, saves",
    [(0, 3, 3), (0, 1, 1), (1e9, 3, 1)],  # epochs 1 and 2, then the final save; or the final only
)
def test_saves_after_each_epoch_but_the_last_then_once_at_the_end(
    tmp_path, min_interval_s, epochs, saves
):
    ck = Checkpointer(tmp_path / "e.ckpt", min_interval_s=min_interval_s)
    rbm, data = rbm_and_data(seed=18)
    newest = []

    def look(epoch, record, model):
        newest.append(read_checkpoint(ck.path)["epoch"] if ck.path.exists() else None)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train_rbm(rbm, data, epochs=epochs, batch_size=6, checkpoint=ck, callbacks=[look],
                  generator=gen(1))  # fmt: skip
    assert ck.saves == saves
    if min_interval_s == 0:  # the callback of epoch e sees the save made after epoch e - 1
        assert newest == [None, *range(1, epochs)]
    else:
        assert newest == [None] * epochs
