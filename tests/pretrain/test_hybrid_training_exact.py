"""The hybrid trainers' plumbing on tiny problems: the loop's invalid inputs with their messages,
the deprecated aliases warning at the caller with the trainer's name, the batch stream and
``chunked``, the records, and the named-optimizer path against the delta form it reduces to."""

from __future__ import annotations

import warnings

import pytest
import torch

from smithing.pretrain.hybrid import ClassRBM, DeepHybridRBM, train_class_rbm, train_deep_hybrid
from smithing.pretrain.hybrid.loop import _Stream, chunked
from warning_site import assert_points_at

D = torch.float64


def model_and_data(seed=0, n=6):
    g = torch.Generator().manual_seed(seed)
    m = ClassRBM(4, 3, 3, init_scale=0.5, dtype=D, generator=g)
    x = torch.bernoulli(torch.full((n, 4), 0.5, dtype=D), generator=g)
    y = torch.arange(n) % 3
    return m, x, y


INVALID = [
    (lambda m, x, y: train_class_rbm(m, x[:, :3], y), "x.shape=(6, 3) is invalid: expected (n, 4)"),
    (lambda m, x, y: train_class_rbm(m, x[0], y), "x.shape=(4,) is invalid: expected (n, 4)"),
    (lambda m, x, y: train_class_rbm(m, x, y[:5]),
     "x labels=(5,) is invalid: expected integer labels of shape (6,)"),
    (lambda m, x, y: train_class_rbm(m, x, y.double()),
     "x labels=(6,) is invalid: expected integer labels of shape (6,)"),
    (lambda m, x, y: train_class_rbm(m, x, y + 1),
     "x labels=(1, 3) is invalid: expected in [0, 3)"),
    (lambda m, x, y: train_class_rbm(m, x, y - 1),
     "x labels=(-1, 1) is invalid: expected in [0, 3)"),
    (lambda m, x, y: train_class_rbm(m, x[:0], y[:0]),
     "x.shape=(0, 4) is invalid: expected at least one labeled example"),
    (lambda m, x, y: train_class_rbm(m, x, y, x_unlabeled=x[:, :2]),
     "x_unlabeled.shape=(6, 2) is invalid: expected (n, 4)"),
    (lambda m, x, y: train_class_rbm(m, x, y, valid=(x[:, :2], y)),
     "valid.shape=(6, 2) is invalid: expected (n, 4)"),
    (lambda m, x, y: train_class_rbm(m, x, y, valid=(x, y + 3)),
     "valid labels=(3, 5) is invalid: expected in [0, 3)"),
    (lambda m, x, y: train_class_rbm(m, x, y, lr=(0.1, 0.2)),
     "lr=(0.1, 0.2) is invalid: expected one number or 1 (one per layer)"),
    (lambda m, x, y: train_class_rbm(m, x, y, optimizer_options={"momentum": 0.5}),
     "optimizer_options={'momentum': 0.5} is invalid: expected None with optimizer='sgd' "
     "(the delta form: use momentum= and weight_decay=)"),
    (lambda m, x, y: train_class_rbm(m, x, y, optimizer="adam", momentum=0.5),
     "momentum=0.5 is invalid: expected 0 unless optimizer='sgd' (give the optimizer's own "
     "options in optimizer_options)"),
    (lambda m, x, y: train_class_rbm(ClassRBM(4, 3, 3, members=2), x, y),
     "members=2 is invalid: expected None (train one model)"),
    (lambda m, x, y: train_deep_hybrid(DeepHybridRBM([4, 3], 3), x, y, combine="vote"),
     "combine='vote' is invalid: expected 'top' or 'mean'"),
    (lambda m, x, y: train_class_rbm(m, x, y, bogus=1), "option='bogus' is invalid"),
]  # fmt: skip


@pytest.mark.parametrize("call, message", INVALID, ids=[f"case{i}" for i in range(len(INVALID))])
def test_invalid_inputs_and_their_messages(call, message):
    m, x, y = model_and_data()
    with pytest.raises(ValueError) as err:
        call(m, x, y)
    assert message in str(err.value)


def test_early_stopping_arguments():
    from smithing.callbacks import EarlyStopping

    m, x, y = model_and_data()
    with pytest.raises(ValueError) as err:
        train_class_rbm(m, x, y, early_stopping=EarlyStopping("train_loss"),
                        early_stopping_patience=2)  # fmt: skip
    assert str(err.value) == (
        "early_stopping_patience=2 is invalid: expected None when early_stopping is given"
    )
    with pytest.raises(ValueError) as err:
        train_class_rbm(m, x, y, early_stopping=EarlyStopping("valid_loss"))
    assert str(err.value) == (
        "early_stopping.monitor='valid_loss' is invalid: expected one of ('train_loss',) "
        "(what this run records)"
    )


@pytest.mark.parametrize("trainer", ["train_class_rbm", "train_deep_hybrid"])
def test_deprecated_aliases_warn_at_the_caller(trainer):
    m, x, y = model_and_data()
    model = m if trainer == "train_class_rbm" else DeepHybridRBM([4, 3], 3, dtype=D)
    fn = train_class_rbm if trainer == "train_class_rbm" else train_deep_hybrid
    seen = []
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        g = torch.Generator().manual_seed(0)
        fn(model, x, y, epochs=2, batch_size=3, lr_schedule=lambda e: 0.5,
           callback=lambda e, r: seen.append(e), generator=g)  # fmt: skip
    dep = [r for r in w if issubclass(r.category, (DeprecationWarning, FutureWarning))]
    assert len(dep) == 2, [str(r.message) for r in w]
    for r in dep:
        assert trainer in str(r.message), str(r.message)
        assert_points_at(r, __file__, ("history.py", "loop.py", "training.py"))
    assert seen  # the legacy callback is called


def test_stream_straddles_permutations_and_chunked():
    g = torch.Generator().manual_seed(3)
    s = _Stream(5, 3, g, "cpu")
    got = torch.cat([s.take() for _ in range(5)])  # 15 indices: 3 permutations of range(5)
    g = torch.Generator().manual_seed(3)
    want = torch.cat([torch.randperm(5, generator=g) for _ in range(3)])
    assert torch.equal(got, want) and s.buf.numel() == 0
    x = torch.arange(12.0).reshape(6, 2)
    calls = []

    def f(t):
        calls.append(len(t))
        return t * 2

    assert torch.equal(chunked(f, x, rows=4), x * 2) and calls == [4, 2]
    calls.clear()
    assert torch.equal(chunked(f, x), x * 2) and calls == [6]  # default 512 rows


def test_records_and_steps_per_epoch():
    m, x, y = model_and_data(n=7)
    xu = torch.bernoulli(
        torch.full((10, 4), 0.5, dtype=D), generator=torch.Generator().manual_seed(1)
    )
    h = train_class_rbm(m, x, y, x_unlabeled=xu, valid=(x[:4], y[:4]), epochs=2, batch_size=3,
                        unlabeled_batch_size=2, lr=0.1, monitor_size=5,
                        generator=torch.Generator().manual_seed(2))  # fmt: skip
    # steps: max(ceil(7 / 3), ceil(10 / 2)) = 5
    assert h.config == {"epochs": 2, "lr": 0.1, "batch_size": 3, "steps_per_epoch": 5}
    r = h.epochs[-1]
    assert set(r) == {"epoch", "lr", "batch_loss", "train_loss", "train_error", "valid_loss",
                      "valid_error", "seconds"}  # fmt: skip
    assert r["epoch"] == 2 and r["lr"] == 0.1
    with torch.no_grad():
        lp = m.log_proba(x[:5])
        nll = float(-lp.gather(-1, y[:5, None]).mean())
        err = float((lp.argmax(-1) != y[:5]).double().mean())
    if h.best_epoch == 2:  # the restored parameters are the last epoch's
        assert r["train_loss"] == pytest.approx(nll, rel=1e-12)
        assert r["train_error"] == pytest.approx(err)
    assert 0 < r["batch_loss"] < 10
    h0 = train_class_rbm(model_and_data()[0], x, y, epochs=0)
    assert h0.epochs == [] and h0.config["steps_per_epoch"] == 1  # ceil(7 / 20)


def test_named_momentum_optimizer_is_the_delta_form_at_a_constant_rate():
    runs = []
    for kw in (
        {"momentum": 0.5},
        {"optimizer": "momentum", "optimizer_options": {"momentum": 0.5}},
    ):
        m, x, y = model_and_data(seed=4)
        train_class_rbm(m, x, y, objective="discriminative", epochs=2, batch_size=3, lr=0.2,
                        generator=torch.Generator().manual_seed(5), **kw)  # fmt: skip
        runs.append(m)
    for p, q in zip(runs[0].parameters(), runs[1].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)


def test_deep_hybrid_lr_per_layer_and_combine_mean_monitoring():
    g = torch.Generator().manual_seed(6)
    model = DeepHybridRBM([4, 3, 2], 3, init_scale=0.5, dtype=D, generator=g)
    _, x, y = model_and_data(seed=7)
    h = train_deep_hybrid(model, x, y, combine="mean", epochs=1, batch_size=3, lr=(0.1, 0.2),
                          generator=torch.Generator().manual_seed(8))  # fmt: skip
    assert h.epochs[0]["lr"] == [0.1, 0.2]
    with torch.no_grad():
        lp = model.log_proba(x, "mean")
    assert h.epochs[0]["train_loss"] == pytest.approx(float(-lp.gather(-1, y[:, None]).mean()))
    with pytest.raises(
        ValueError, match=r"lr=\(0.1, 0.2, 0.3\) is invalid: expected one number or 2"
    ):
        train_deep_hybrid(model, x, y, lr=(0.1, 0.2, 0.3))
