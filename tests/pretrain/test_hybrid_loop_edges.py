"""The hybrid loop's records, schedules, model selection, saves and stops (written for its
mutants, after test_hybrid_loop_exact.py): ``batch_loss`` against a transcription over two
epochs, a named optimizer with a schedule and per-layer rates, a ready optimizer's own rate,
the built-in selection on the validation split (best epoch, restored weights, patience), an
``EarlyStopping`` and its state across a resume, the mid-epoch and final saves, divergence,
and the batch order drawn from the global generator."""

from __future__ import annotations

import math

import pytest
import torch
from test_hybrid_loop_exact import D, data

from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer, read_checkpoint
from smithing.pretrain.hybrid import ClassRBM, DeepHybridRBM, train_class_rbm, train_deep_hybrid
from smithing.pretrain.hybrid.functional import discriminative_gradient, log_proba
from tensortools import gen, same_parameters


def crbm(seed=1):
    return ClassRBM(4, 3, 3, init_scale=0.5, dtype=D, generator=torch.Generator().manual_seed(seed))


def test_batch_loss_and_a_delta_schedule_against_a_transcription():
    """Discriminative training (no sampling): 2 epochs of 2 steps at lr 0.2 * factor(epoch);
    batch_loss = mean -log p(y|x) of each batch before its update."""
    x, y = data()
    m = crbm()
    W, b, c, U, d = (t.detach().clone() for t in m.params())
    g = gen(2)
    order = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=g)))
    want_loss = []
    buf = torch.empty(0, dtype=torch.long)
    for factor in (1.0, 0.5):
        total = 0.0
        for _ in range(2):
            while buf.numel() < 3:
                buf = torch.cat([buf, torch.randperm(6, generator=order)])
            idx, buf = buf[:3], buf[3:]
            xb, yb = x[idx], y[idx]
            total -= float(log_proba(xb, W, c, U, d)[torch.arange(3), yb].sum())
            gd = discriminative_gradient(xb, yb, W, c, U, d)
            W, c, U, d = (t + 0.2 * factor * gd[nm] for t, nm in zip((W, c, U, d), "WcUd"))
        want_loss.append(total / 6)
    h = train_class_rbm(m, x, y, objective="discriminative", epochs=2, batch_size=3, lr=0.2,
                        schedule=lambda e: [1.0, 0.5][e], generator=gen(2))  # fmt: skip
    for t, r in zip((m.W, m.c, m.U, m.d), (W, c, U, d)):
        torch.testing.assert_close(t.detach(), r, rtol=1e-12, atol=1e-14)
    assert torch.equal(m.b.detach(), b)  # the discriminative gradient leaves b alone
    assert h["batch_loss"] == pytest.approx(want_loss, rel=1e-12)
    assert h["lr"] == [0.2, 0.1] and all(r["seconds"] >= 0 for r in h.epochs)
    assert h.seconds >= h.epochs[-1]["seconds"] and h.best_epoch == 2  # no selection: the last


def test_a_named_optimizer_with_a_schedule_and_per_layer_rates():
    x, y = data()
    a, b = crbm(), crbm()
    kw = dict(objective="discriminative", epochs=2, batch_size=3, lr=0.2, generator=None)
    sched = lambda e: [1.0, 0.5][e]  # noqa: E731
    train_class_rbm(a, x, y, schedule=sched, **(kw | {"generator": gen(2)}))
    h = train_class_rbm(b, x, y, optimizer="momentum", optimizer_options={"momentum": 0.0},
                        schedule=sched, **(kw | {"generator": gen(2)}))  # fmt: skip
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    assert h["lr"] == pytest.approx([0.2, 0.1], rel=1e-15)
    deep = DeepHybridRBM([4, 3, 2], 3, init_scale=0.5, dtype=D, generator=gen(1))
    h = train_deep_hybrid(deep, x, y, optimizer="adam", lr=(0.1, 0.2), epochs=2, batch_size=3,
                          schedule=sched, generator=gen(2))  # fmt: skip
    assert h["lr"] == [[0.1, 0.2], [0.05, 0.1]]
    m = crbm()
    h = train_class_rbm(m, x, y, optimizer=torch.optim.SGD(m.parameters(), lr=0.3), epochs=1,
                        generator=gen(2))  # fmt: skip
    assert h.epochs[0]["lr"] == 0.3  # the ready optimizer's own rate, not the options' 0.05


def ruin(epoch, record, model):
    """After every record, make the model confidently wrong (class 0 everywhere)."""
    with torch.no_grad():
        model.U.zero_()
        model.d.copy_(torch.tensor([50.0, -50.0, -50.0], dtype=D))


def test_the_built_in_selection_keeps_the_best_validated_epoch_and_stops_on_patience():
    x, y = data()
    first = crbm()
    train_class_rbm(first, x, y, valid=(x, y), epochs=1, batch_size=3, lr=0.01, generator=gen(2))
    m = crbm()
    h = train_class_rbm(m, x, y, valid=(x, y), epochs=6, batch_size=3, lr=0.01,
                        early_stopping_patience=1, callbacks=[ruin], generator=gen(2))  # fmt: skip
    # epoch 1 is the best; epochs 2 and 3 (after the ruin) are worse: 2 > patience 1 -> stop
    assert h.stop_reason == "patience" and h.epochs_run == 3 and h.best_epoch == 1
    assert h.epochs[1]["valid_error"] == pytest.approx(2 / 3)
    assert same_parameters(m, first)  # the weights that made epoch 1's record, not the ruined ones
    kept = crbm()
    h = train_class_rbm(kept, x, y, valid=(x, y), epochs=2, batch_size=3, lr=0.01,
                        restore_best=False, callbacks=[ruin], generator=gen(2))  # fmt: skip
    assert h.best_epoch == 1 and not same_parameters(kept, first)  # the last (ruined) weights stay
    assert float(kept.d[0]) == 50.0


def test_early_stopping_its_epoch_its_weights_and_its_state_across_a_resume(tmp_path):
    x, y = data()
    first = crbm()
    train_class_rbm(first, x, y, epochs=1, batch_size=3, generator=gen(2))

    def run(**kw):
        m = crbm()
        stop = EarlyStopping("train_loss", patience=2, min_delta=1e9)  # only epoch 1 improves
        h = train_class_rbm(m, x, y, epochs=8, batch_size=3, early_stopping=stop, **kw)
        return m, h, stop

    m, h, stop = run(generator=gen(2))
    assert h.stop_reason == "patience" and h.epochs_run == 3 and h.best_epoch == 1
    assert stop.best_epoch == 1 and same_parameters(m, first)
    ck = Checkpointer(tmp_path / "e.ckpt", min_interval_s=0, save_final=False)
    g = gen(2)
    run(generator=g, checkpoint=ck, callbacks=[lambda e, r, mm: e == 2])
    m2, h2, stop2 = run(generator=g, checkpoint=ck)
    assert h2.epochs_run == 3 and h2.stop_reason == "patience" and same_parameters(m2, first)


def test_a_resumed_run_without_validation(tmp_path):
    x, y = data()
    whole = crbm()
    train_class_rbm(whole, x, y, epochs=3, batch_size=3, generator=gen(2))
    ck = Checkpointer(tmp_path / "n.ckpt", min_interval_s=0, save_final=False)
    g = gen(2)
    part = crbm()
    h = train_class_rbm(part, x, y, epochs=3, batch_size=3, checkpoint=ck, generator=g,
                        callbacks=[lambda e, r, m: e == 2])  # fmt: skip
    assert h.stop_reason == "callback" and h.epochs_run == 2  # the callback's True stops it
    again = crbm()
    train_class_rbm(again, x, y, epochs=3, batch_size=3, checkpoint=ck, generator=g)
    assert same_parameters(again, whole)


def test_mid_epoch_and_final_saves(tmp_path):
    x, y = data(n=15)
    ck = Checkpointer(tmp_path / "m.ckpt", min_interval_s=0, every_batches=3, save_final=False)
    train_class_rbm(crbm(), x, y, epochs=1, batch_size=3, checkpoint=ck, generator=gen(2))
    state = read_checkpoint(ck.path)  # 5 steps: one save, after the 3rd
    assert ck.saves == 1 and (state["epoch"], state["step"], state["finished"]) == (1, 3, False)
    ck = Checkpointer(tmp_path / "f.ckpt", min_interval_s=0)
    train_class_rbm(crbm(), x, y, epochs=2, batch_size=15, checkpoint=ck, generator=gen(2))
    state = read_checkpoint(ck.path)  # after epoch 1, then the final save
    assert ck.saves == 2 and (state["epoch"], state["step"], state["finished"]) == (3, 0, True)
    assert state["streams"][1] is None  # no unlabeled stream
    ck = Checkpointer(tmp_path / "g.ckpt", min_interval_s=1e9)
    train_class_rbm(crbm(), x, y, epochs=3, batch_size=15, checkpoint=ck, generator=gen(2))
    assert ck.saves == 1  # never due: only the final save


def test_signature_of_per_layer_rates_and_a_validation_split_of_its_own_size(tmp_path):
    x, y = data()
    ck = Checkpointer(tmp_path / "s.ckpt", min_interval_s=0)
    deep = DeepHybridRBM([4, 3, 2], 3, init_scale=0.5, dtype=D, generator=gen(1))
    train_deep_hybrid(deep, x, y, valid=(x[:3], y[:3]), lr=(0.1, 0.2), epochs=1, checkpoint=ck,
                      generator=gen(2))  # fmt: skip
    sig = read_checkpoint(ck.path)["signature"]
    assert sig["training"]["lr"] == [0.1, 0.2] and sig["data"] == [6, 0, 3]


def test_divergence_and_what_callbacks_receive():
    x, y = data()
    m = crbm()
    with torch.no_grad():  # the discriminative gradient is bounded: start from a broken model
        m.U.fill_(float("inf"))
    seen = []
    h = train_class_rbm(m, x, y, objective="discriminative", epochs=3, batch_size=6,
                        callbacks=[lambda e, r, mm: seen.append(r)], generator=gen(2))  # fmt: skip
    assert h.status == h.stop_reason == "diverged" and h.epochs_run == 1
    assert h.message == "non-finite parameters in epoch 1" and seen == []
    m = crbm()
    h = train_class_rbm(m, x, y, epochs=2, batch_size=3, generator=gen(2),
                        callbacks=[lambda e, r, mm: seen.append((e, r, mm))])  # fmt: skip
    assert seen == [(1, h.epochs[0], m), (2, h.epochs[1], m)]
    assert all(p.grad is None for p in m.parameters())


def test_the_order_without_a_generator_comes_from_the_global_one():
    """Discriminative training draws nothing but the order: the global generator seeded 5
    gives the run of a generator seeded 5."""
    x, y = data()
    a, b = crbm(), crbm()
    torch.manual_seed(5)
    train_class_rbm(a, x, y, objective="discriminative", epochs=2, batch_size=3)
    train_class_rbm(b, x, y, objective="discriminative", epochs=2, batch_size=3,
                    generator=gen(5))  # fmt: skip
    assert same_parameters(a, b) and not math.isnan(float(a.W.sum()))


def test_one_unlabeled_example_takes_part():
    x, y = data(n=4)
    a, b = crbm(), crbm()
    xu = data(seed=3, n=1)[0]
    train_class_rbm(a, x, y, x_unlabeled=xu, objective="hybrid", beta=0.5, epochs=1,
                    batch_size=2, generator=gen(2))  # fmt: skip
    train_class_rbm(b, x, y, objective="hybrid", beta=0.5, epochs=1, batch_size=2,
                    generator=gen(2))  # fmt: skip
    assert not same_parameters(a, b)
