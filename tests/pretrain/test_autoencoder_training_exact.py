"""train_autoencoder's documented details on tiny problems (written for its mutants): the table
of invalid inputs with the full messages, the defaults in use, the loop against a transcription
(the batches' order and corruption, emphasis weights, the mean loss over uneven batches), the
monitors, schedules, early stopping and restoring the best weights (also across a resume), the
checkpoint's signature, parts and saves, divergence, and what callbacks receive."""

from __future__ import annotations

import inspect

import pytest
import torch

from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer, read_checkpoint
from smithing.pretrain.autoencoder import DenoisingAutoencoder, train_autoencoder
from smithing.pretrain.autoencoder.functional import corrupt_with_mask
from smithing.pretrain.autoencoder.training import _clean_loss
from tensortools import gen, same_parameters

D = torch.float64


def ae_and_data(seed=0, n=6, nv=4, nh=3, members=None, dtype=D):
    g = torch.Generator().manual_seed(seed)
    ae = DenoisingAutoencoder(nv, nh, members=members, dtype=dtype, generator=g)
    x = torch.bernoulli(torch.full((n, nv), 0.5, dtype=dtype), generator=g)
    return ae, x


class CountingSGD(torch.optim.SGD):
    steps = 0

    def step(self, closure=None):
        CountingSGD.steps += 1
        return super().step(closure)


INVALID = [
    ({"epochs": -1}, "epochs=-1 is invalid: expected an int >= 0"),
    ({"epochs": 1.0}, "epochs=1.0 is invalid: expected an int >= 0"),
    ({"batch_size": 0}, "batch_size=0 is invalid: expected a positive int"),
    ({"batch_size": 2.0}, "batch_size=2.0 is invalid: expected a positive int"),
    ({"contractive": -0.1}, "contractive=-0.1 is invalid: expected a non-negative number"),
    ({"monitor_size": 0}, "monitor_size=0 is invalid: expected None or a positive int"),
    ({"monitor_size": 2.0}, "monitor_size=2.0 is invalid: expected None or a positive int"),
    ({"monitor_size": True}, "monitor_size=True is invalid: expected None or a positive int"),
    ({"corruption": "blur"},
     "unknown corruption 'blur'; valid: gaussian, masking, none, salt_and_pepper"),
    ({"rate": 1.5}, "rate=1.5 is invalid: expected a probability in [0, 1]"),
    ({"corruption": "gaussian", "rate": -1.0},
     "rate=-1.0 is invalid: expected a standard deviation >= 0"),
    ({"emphasis": (1.0,)},
     "emphasis=(1.0,) is invalid: expected None or (alpha, beta), two non-negative weights"),
    ({"emphasis": (1.0, 2.0, 3.0)}, "emphasis=(1.0, 2.0, 3.0) is invalid: expected None or "
     "(alpha, beta), two non-negative weights"),
    ({"emphasis": (-1.0, 1.0)},
     "emphasis=(-1.0, 1.0) is invalid: expected None or (alpha, beta), two non-negative weights"),
    ({"emphasis": (1.0, -0.5)},
     "emphasis=(1.0, -0.5) is invalid: expected None or (alpha, beta), two non-negative weights"),
    ({"early_stopping": EarlyStopping("recon_loss_valid")},
     "early_stopping.monitor='recon_loss_valid' is invalid: expected one of ('recon_loss',) "
     "(what this run records)"),
]  # fmt: skip


@pytest.mark.parametrize("kwargs, message", INVALID, ids=[f"case{i}" for i in range(len(INVALID))])
def test_invalid_inputs_and_their_messages(kwargs, message):
    ae, x = ae_and_data()
    with pytest.raises(ValueError) as err:
        train_autoencoder(ae, x, **kwargs)
    assert str(err.value) == message


def test_invalid_ensemble_early_stopping_and_device():
    ae, x = ae_and_data(members=2)
    stop = EarlyStopping("recon_loss")
    with pytest.raises(ValueError) as err:
        train_autoencoder(ae, x, early_stopping=stop)
    assert str(err.value) == f"early_stopping={stop!r} is invalid: expected None for an ensemble " \
        "(members=M)"  # fmt: skip
    ae, _ = ae_and_data()
    with pytest.raises(ValueError) as err:
        train_autoencoder(ae, torch.zeros(6, 4, dtype=D, device="meta"))
    assert str(err.value) == "data.device=device(type='meta') is invalid: expected the model's " \
        "device cpu"  # fmt: skip
    valid = ae_and_data(seed=5)[1]
    with pytest.raises(ValueError) as err:
        train_autoencoder(ae, x, valid_data=valid, early_stopping=EarlyStopping("valid_loss"))
    assert "expected one of ('recon_loss_valid', 'recon_loss')" in str(err.value)


def test_accepted_edges():
    ae, x = ae_and_data()
    h = train_autoencoder(ae, x, epochs=0)
    assert h.epochs == [] and h.status == "done" and h.best_epoch == 0
    train_autoencoder(ae, x, epochs=1, emphasis=(0.0, 1.0), contractive=0.0, generator=gen(1))
    train_autoencoder(ae, x, epochs=1, emphasis=(1.0, 0.0), rate=0.5, generator=gen(1))
    h = train_autoencoder(ae, x, epochs=1, batch_size=1, monitor_size=1, generator=gen(1))
    with torch.no_grad():
        assert h.epochs[0]["recon_loss"] == pytest.approx(float(ae.loss(x[:1])), rel=1e-12)
    assert h.config == {"epochs": 1, "lr": 0.1, "batch_size": 1}
    assert isinstance(h.epochs[0]["seconds"], float) and h.seconds >= h.epochs[0]["seconds"] > 0


def test_the_documented_defaults():
    params = inspect.signature(train_autoencoder).parameters
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    assert defaults == {
        "epochs": 15, "lr": 0.1, "batch_size": 20, "optimizer": "sgd",
        "optimizer_options": None, "schedule": None, "schedule_options": None,
        "corruption": "masking", "rate": 0.0, "emphasis": None, "contractive": 0.0,
        "valid_data": None, "monitor_size": None, "early_stopping": None, "generator": None,
        "callbacks": (), "progress": None, "device": None, "checkpoint": None, "callback": None,
    }  # fmt: skip


def test_the_defaults_in_use():
    """15 epochs of batches of 20 (21 examples: 2 steps an epoch, 1 with 21), lr 0.1, and rate
    0 (no corruption: the same model as rate=0 given)."""
    ae, x = ae_and_data(seed=2, n=21)
    CountingSGD.steps = 0
    h = train_autoencoder(ae, x, optimizer=CountingSGD(ae.parameters(), lr=0.1), generator=gen(1))
    assert len(h.epochs) == 15 and CountingSGD.steps == 30
    a, _ = ae_and_data(seed=2, n=21)
    b, _ = ae_and_data(seed=2, n=21)
    ha = train_autoencoder(a, x, epochs=1, generator=gen(1))
    train_autoencoder(b, x, epochs=1, lr=0.1, rate=0.0, generator=gen(1))
    assert same_parameters(a, b) and ha.epochs[0]["lr"] == 0.1


def reference(ae, x, *, epochs, batch, lr, corruption, rate, emphasis, seed):
    """SGD on the model's own loss, batch by batch, in the trainer's draw order."""
    g = gen(seed)
    params = [p for p in ae.parameters()]
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        epoch = []
        for s in range(0, len(x), batch):
            xb = x[perm[s : s + batch]]
            x_tilde, mask = corrupt_with_mask(xb, corruption, rate, g)
            w = None if emphasis is None else torch.where(mask, *emphasis).to(D)
            loss = ae.loss(xb, x_tilde, weights=w)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, gr in zip(params, grads):
                    p -= lr * gr
            epoch.append(float(loss))
        losses.append(sum(epoch) / len(epoch))
    return losses


@pytest.mark.parametrize("emphasis", [None, (0.3, 0.7)])
def test_the_loop_against_a_transcription(emphasis):
    ae, x = ae_and_data(seed=3, n=7)
    ref, _ = ae_and_data(seed=3, n=7)
    want = reference(ref, x, epochs=2, batch=3, lr=0.2, corruption="masking", rate=0.4,
                     emphasis=emphasis, seed=4)  # fmt: skip
    h = train_autoencoder(ae, x, epochs=2, batch_size=3, lr=0.2, rate=0.4, emphasis=emphasis,
                          generator=gen(4))  # fmt: skip
    for p, q in zip(ae.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    assert h["loss"] == pytest.approx(want, rel=1e-12)
    with torch.no_grad():
        assert h.epochs[-1]["recon_loss"] == pytest.approx(float(ae.loss(x)), rel=1e-12)
    assert [r["epoch"] for r in h.epochs] == [1, 2] and h.best_epoch == 2


def test_monitors_float32_data_and_device():
    a, x = ae_and_data(seed=6)
    valid = ae_and_data(seed=7)[1]
    h = train_autoencoder(a, x.float(), epochs=2, batch_size=3, valid_data=valid.float(),
                          monitor_size=4, device="cpu", generator=gen(1))  # fmt: skip
    b, _ = ae_and_data(seed=6)
    hb = train_autoencoder(b, x, epochs=2, batch_size=3, valid_data=valid, monitor_size=4,
                           generator=gen(1))  # fmt: skip
    assert (
        same_parameters(a, b)
        and a.W.dtype == D
        and h.epochs == [{**r, "seconds": s["seconds"]} for r, s in zip(hb.epochs, h.epochs)]
    )
    with torch.no_grad():
        assert h.epochs[-1]["recon_loss"] == pytest.approx(float(a.loss(x[:4])), rel=1e-12)
        assert h.epochs[-1]["recon_loss_valid"] == pytest.approx(float(a.loss(valid[:4])),
                                                                 rel=1e-12)  # fmt: skip
    h = train_autoencoder(b, x, epochs=1, batch_size=3, valid_data=valid, device="cpu",
                          generator=gen(1))  # fmt: skip
    with torch.no_grad():  # no monitor_size: every example of both sets
        assert h.epochs[0]["recon_loss_valid"] == pytest.approx(float(b.loss(valid)), rel=1e-12)
        assert h.epochs[0]["recon_loss"] == pytest.approx(float(b.loss(x)), rel=1e-12)
    h = train_autoencoder(b, x, epochs=1, batch_size=3, device="cpu", generator=gen(1))
    assert "recon_loss_valid" not in h.epochs[0]


def test_clean_loss_in_chunks_and_of_nothing():
    ae, _ = ae_and_data()
    x = torch.bernoulli(torch.full((4097, 4), 0.5, dtype=D), generator=gen(8))
    loss, rows = ae.loss, []
    ae.loss = lambda xb, *a, **k: rows.append(len(xb)) or loss(xb, *a, **k)  # records the chunks
    with torch.no_grad():
        want = (loss(x[:4096]) * 4096 + loss(x[4096:]) * 1) / 4097
        assert torch.equal(_clean_loss(ae, x), want) and rows == [4096, 1]  # 4,096-row chunks
        del ae.loss
        assert _clean_loss(ae, x[:5], chunk=2) == pytest.approx(float(ae.loss(x[:5])), rel=1e-14)
    with pytest.raises(ValueError) as err:
        _clean_loss(ae, x[:0])
    assert str(err.value) == "x.shape=(0, 4) is invalid: expected at least one example"


def test_schedules_named_and_callable():
    ae, x = ae_and_data(seed=9)
    h = train_autoencoder(ae, x, epochs=3, batch_size=3, lr=0.2, schedule="step",
                          schedule_options={"step_size": 1, "gamma": 0.5},
                          generator=gen(1))  # fmt: skip
    assert h["lr"] == pytest.approx([0.2, 0.1, 0.05], rel=1e-15)
    h = train_autoencoder(ae, x, epochs=4, batch_size=3, lr=0.2, schedule="cosine",
                          generator=gen(1))  # fmt: skip
    assert h["lr"][2] == pytest.approx(0.1, rel=1e-15)  # over the run's own 4 epochs
    h = train_autoencoder(ae, x, epochs=2, batch_size=3, lr=0.2, optimizer="momentum",
                          optimizer_options={"momentum": 0.5},
                          schedule=lambda e: [1.0, 0.25][e], generator=gen(1))  # fmt: skip
    assert h["lr"] == [0.2, 0.05]


def test_callbacks_progress_and_the_deprecated_callback():
    ae, x = ae_and_data(seed=10)
    seen = []
    with pytest.warns(DeprecationWarning) as rec:
        h = train_autoencoder(ae, x, epochs=3, batch_size=3, generator=gen(1),
                              progress=lambda e, r: seen.append(("p", e, r)),
                              callbacks=[lambda e, r, m: seen.append(("c", e, r, m))],
                              callback=lambda e, r: seen.append(("old", e, r)) or e == 1,
                              )  # fmt: skip
    assert [str(w.message) for w in rec] == [
        "train_autoencoder(callback=f) is deprecated; use callbacks=[g] with g(epoch, record, "
        "model) (1-based epoch) instead"
    ]
    r1, r2 = h.epochs
    assert seen == [("p", 1, r1), ("c", 1, r1, ae), ("old", 0, r1),
                    ("p", 2, r2), ("c", 2, r2, ae), ("old", 1, r2)]  # fmt: skip
    assert seen[1][3] is ae and seen[0][2] is r1
    assert h.stop_reason == "callback" and h.best_epoch == 2


def test_early_stopping_restores_the_best_weights_and_stops():
    ae, x = ae_and_data(seed=11)
    first, _ = ae_and_data(seed=11)
    train_autoencoder(first, x, epochs=1, batch_size=3, generator=gen(1))
    stop = EarlyStopping("recon_loss", patience=2, min_delta=1e9)  # only epoch 1 improves
    h = train_autoencoder(ae, x, epochs=6, batch_size=3, early_stopping=stop, generator=gen(1))
    assert h.stop_reason == "patience" and h.epochs_run == 3 and h.best_epoch == 1
    assert same_parameters(ae, first)  # epoch 1's weights, restored
    keep = EarlyStopping("recon_loss", patience=2, min_delta=1e9, restore_best_weights=False)
    last, _ = ae_and_data(seed=11)
    train_autoencoder(last, x, epochs=6, batch_size=3, early_stopping=keep, generator=gen(1))
    three, _ = ae_and_data(seed=11)
    train_autoencoder(three, x, epochs=3, batch_size=3, generator=gen(1))
    assert same_parameters(last, three)  # stopped after epoch 3, its own weights kept
    valid = ae_and_data(seed=12)[1]
    both = EarlyStopping("recon_loss_valid", patience=1, min_delta=1e9)
    h = train_autoencoder(ae_and_data(seed=11)[0], x, epochs=5, batch_size=3, valid_data=valid,
                          early_stopping=both, callbacks=[lambda e, r, m: e == 2],
                          generator=gen(1))  # fmt: skip
    assert h.stop_reason == "patience" and h.epochs_run == 2  # patience wins over the callback


def test_a_resumed_run_restores_its_best_weights(tmp_path):
    x = ae_and_data(seed=13)[1]

    def run(**kw):
        ae, _ = ae_and_data(seed=13)
        stop = EarlyStopping("recon_loss", patience=10, min_delta=1e9)  # only epoch 1 improves
        train_autoencoder(ae, x, epochs=4, batch_size=3, early_stopping=stop, **kw)
        return ae

    whole = run(generator=gen(1))
    ck = Checkpointer(tmp_path / "a.ckpt", min_interval_s=0, save_final=False)
    g = gen(1)
    run(generator=g, checkpoint=ck, callbacks=[lambda e, r, m: e == 2])
    assert read_checkpoint(ck.path)["best_state"] is not None
    again = run(generator=g, checkpoint=ck)
    assert same_parameters(again, whole)


def test_divergence_stops_a_single_model():
    ae, _ = ae_and_data(seed=14)
    huge = torch.full((6, 4), 1e300, dtype=D)
    h = train_autoencoder(ae, huge, epochs=3, batch_size=3, lr=1e300, generator=gen(1))
    assert h.status == h.stop_reason == "diverged" and len(h.epochs) == 1
    assert h.message == f"training loss became {h.epochs[0]['loss']} in epoch 1"
    assert h.best_epoch is None


def test_an_ensemble_with_its_own_data_per_member():
    ae, _ = ae_and_data(seed=15, members=2)
    x = torch.bernoulli(torch.full((2, 6, 4), 0.5, dtype=D), generator=gen(16))
    h = train_autoencoder(ae, x, epochs=2, batch_size=3, generator=gen(1))
    assert len(h.epochs[-1]["loss"]) == 2 and len(h.epochs[-1]["recon_loss"]) == 2
    with torch.no_grad():
        torch.testing.assert_close(torch.tensor(h.epochs[-1]["recon_loss"], dtype=D),
                                   ae.loss(x), rtol=1e-12, atol=0)  # fmt: skip


def test_no_gradients_are_left_behind():
    ae, x = ae_and_data(seed=17)
    train_autoencoder(ae, x, epochs=1, batch_size=3, generator=gen(1))
    assert all(p.grad is None for p in ae.parameters())


def test_the_checkpoint_signature_parts_and_saves(tmp_path):
    ae, x = ae_and_data(seed=18)
    ck = Checkpointer(tmp_path / "s.ckpt", min_interval_s=0, every_batches=1)
    train_autoencoder(ae, x, epochs=2, batch_size=3, lr=0.05, optimizer="momentum",
                      optimizer_options={"momentum": 0.5}, rate=0.25, emphasis=(1.0, 0.5),
                      contractive=0.1, early_stopping=EarlyStopping("recon_loss", patience=9),
                      checkpoint=ck, generator=gen(1))  # fmt: skip
    # each epoch: a save after its first of 2 batches; after epoch 1; then the final save
    assert ck.saves == 2 + 1 + 1
    state = read_checkpoint(ck.path)
    assert state["trainer"] == "train_autoencoder"
    assert state["signature"] == {
        "epochs": 2,
        "lr": 0.05,
        "batch_size": 3,
        "optimizer": "momentum",
        "optimizer_options": "{'momentum': 0.5}",
        "corruption": ["masking", 0.25],
        "emphasis": [1.0, 0.5],
        "contractive": 0.1,
        "data": [6, 4],
        "parameters": [["W", [3, 4]], ["b", [3]], ["c", [4]]],
        "generator": True,
        "early_stopping": "recon_loss",
    }
    assert set(state) == {"trainer", "signature", "epoch", "position", "finished", "elapsed",
                          "model", "optimizer", "generator", "early_stopping", "best_state",
                          "history", "rng"}  # fmt: skip
    assert torch.equal(state["model"]["W"], ae.W)
    ck = Checkpointer(tmp_path / "t.ckpt", min_interval_s=0)
    ae, x = ae_and_data(seed=18)
    train_autoencoder(ae, x, epochs=1, optimizer=torch.optim.SGD(ae.parameters(), lr=0.1),
                      checkpoint=ck)  # fmt: skip
    sig = read_checkpoint(ck.path)["signature"]
    assert (sig["optimizer"], sig["optimizer_options"], sig["generator"], sig["emphasis"],
            sig["early_stopping"]) == ("SGD", "{}", False, None, None)  # fmt: skip


@pytest.mark.parametrize("min_interval_s, epochs, saves", [(0, 3, 3), (0, 1, 1), (1e9, 3, 1)])
def test_epoch_end_saves(tmp_path, min_interval_s, epochs, saves):
    ck = Checkpointer(tmp_path / "e.ckpt", min_interval_s=min_interval_s)
    ae, x = ae_and_data(seed=19)
    train_autoencoder(ae, x, epochs=epochs, batch_size=6, checkpoint=ck, generator=gen(1))
    assert ck.saves == saves


def test_the_loss_of_a_one_batch_epoch():
    ae, x = ae_and_data(seed=20)
    ref, _ = ae_and_data(seed=20)
    want = reference(ref, x, epochs=1, batch=6, lr=0.1, corruption="masking", rate=0.3,
                     emphasis=None, seed=21)  # fmt: skip
    h = train_autoencoder(ae, x, epochs=1, batch_size=6, rate=0.3, generator=gen(21))
    assert h.epochs[0]["loss"] == pytest.approx(want[0], rel=1e-12)
