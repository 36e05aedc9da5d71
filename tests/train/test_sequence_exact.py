"""Exact answers for ``fit_sequence`` and ``evaluate_split`` on tiny float64 problems: the
records against a float64 transcription of the step loop, the metrics of a split written out by
hand, the checkpoint's signature, and the invalid inputs with their full messages.

Written for the mutation score of ``smithing.train.sequence`` (issue 15).
"""

from __future__ import annotations

import math

import pytest
import torch
from tiny_regression import Counting, linear, regression
from torch import nn
from torch.nn import functional as F

from smithing.checkpoint import Checkpointer
from smithing.checkpoint.files import read_checkpoint
from smithing.data.base import Dataset, Split
from smithing.train.sequence import evaluate_split, fit_sequence

D = torch.float64


class Squeezed(nn.Module):
    """``y ~ x @ w + b`` with predictions ``(batch,)``, as fit_sequence's regression wants."""

    def __init__(self, w=(0.3, -0.1), b=0.2):
        super().__init__()
        self.lin = linear(w, b)

    def forward(self, x):
        return self.lin(x).squeeze(-1)


def metrics(w, b, s):
    r = s.x @ w + b - s.y
    return float((r**2).mean())


def transcription(data, *, steps, lr, batch_size, seed, eval_every, clip=None, w=(0.3, -0.1),
                  b=0.2):  # fmt: skip
    """fit_sequence's loop in float64 with SGD: a fresh permutation whenever a full batch no
    longer fits, the norm before clipping, the records after step 0, every ``eval_every``-th
    step and the last. ``lr`` is a number, or a function of the 0-based step index giving
    that step's rate (the records then hold ``lr``, the last step's rate)."""
    w, b = torch.tensor(w, dtype=D), torch.tensor(b, dtype=D)
    x, y = data.train.x, data.train.y
    n = len(y)
    gen = torch.Generator().manual_seed(seed)
    perm, pos = torch.randperm(n, generator=gen), 0

    def record(step, window):
        rec = {"step": step}
        if window:
            k = len(window)
            if callable(lr):
                rec["lr"] = lr(step - 1)
            rec["train_loss"] = sum(v[0] for v in window) / k
            rec["grad_norm"] = sum(v[1] for v in window) / k
            rec["clipped"] = sum(v[2] for v in window) / k
        for name in ("valid", "test"):
            rec[f"{name}_loss"] = rec[f"{name}_mse"] = metrics(w, b, data.split(name))
        return rec

    recs, window = [record(0, [])], []
    for step in range(1, steps + 1):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos : pos + batch_size]
        pos += batch_size
        xb, yb = x[idx], y[idx]
        r = xb @ w + b - yb
        loss = float((r**2).mean())
        gw, gb = 2 * xb.T @ r / len(idx), 2 * r.mean()
        norm = math.sqrt(float((gw**2).sum() + gb**2))
        clipped = clip is not None and norm + 1e-6 > clip
        if clipped:
            gw, gb = gw * clip / (norm + 1e-6), gb * clip / (norm + 1e-6)
        rate = lr(step - 1) if callable(lr) else lr
        w, b = w - rate * gw, b - rate * gb
        window.append((loss, norm, clipped))
        if step % eval_every == 0 or step == steps:
            recs.append(record(step, window))
            window = []
    return w, b, recs


def assert_records(got, want):
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for g, r in zip(got, want):
        assert set(g) == set(r), (g, r)
        for k, v in r.items():
            assert g[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k


@pytest.mark.parametrize("clip", [None, 0.3, 100.0])
@pytest.mark.parametrize("batch_size,eval_every", [(2, 3), (5, 1), (3, 4)])
def test_fit_sequence_equals_the_float64_transcription(clip, batch_size, eval_every):
    data = regression()
    m = Squeezed()
    h = fit_sequence(m, data, steps=7, lr=0.1, batch_size=batch_size, optimizer="sgd",
                     clip_norm=clip, eval_every=eval_every, seed=2)  # fmt: skip
    w, b, recs = transcription(data, steps=7, lr=0.1, batch_size=batch_size, seed=2,
                               eval_every=eval_every, clip=clip)  # fmt: skip
    torch.testing.assert_close(m.lin.weight.detach()[0], w, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(m.lin.bias.detach()[0], b, rtol=1e-12, atol=1e-14)
    assert_records(h.epochs, recs)
    assert (h.status, h.stop_reason, h.message, h.best_epoch) == ("done", "max_steps", "", None)
    assert h.final == {k: v for k, v in h.epochs[-1].items() if k != "step"}
    assert h.config == {"steps": 7, "lr": 0.1, "batch_size": batch_size, "seed": 2,
                        "eval_every": eval_every}  # fmt: skip
    if clip == 0.3:
        assert any(r.get("clipped", 0) > 0 for r in h.epochs)


def test_a_batch_larger_than_the_data_is_the_whole_set_and_steps_zero_only_evaluates():
    data = regression()
    m = Squeezed()
    h = fit_sequence(m, data, steps=2, lr=0.1, batch_size=50, optimizer="sgd", clip_norm=None,
                     eval_every=1)  # fmt: skip
    w, b, recs = transcription(data, steps=2, lr=0.1, batch_size=5, seed=0, eval_every=1)
    assert_records(h.epochs, recs)
    h = fit_sequence(Squeezed(), data, steps=0)
    assert [r["step"] for r in h.epochs] == [0] and h.status == "done"
    assert set(h.final) == {"valid_loss", "valid_mse", "test_loss", "test_mse"}


class Recorder:
    def __init__(self):
        self.calls = []

    def penalty(self, model):
        return 0.0 * model.lin.weight.sum()

    def before_step(self, model, lr):
        self.calls.append(("before", lr, torch.is_grad_enabled()))

    def after_step(self, model, lr):
        self.calls.append(("after", lr, torch.is_grad_enabled()))


def test_regularizer_hooks_callbacks_and_progress():
    data = regression()
    reg, seen, cbs = Recorder(), [], []

    def first(step, rec, model):
        cbs.append(("first", step))
        return step == 4

    def second(step, rec, model):
        cbs.append(("second", step))

    h = fit_sequence(Squeezed(), data, steps=9, lr=0.1, batch_size=2, optimizer="sgd",
                     eval_every=2, regularizer=reg, callbacks=[first, second],
                     progress=lambda s, r: seen.append((s, r)))  # fmt: skip
    assert reg.calls == [("before", 0.1, False), ("after", 0.1, False)] * 4
    assert cbs == [("first", 2), ("second", 2), ("first", 4), ("second", 4)]
    assert [s for s, _ in seen] == [0, 2, 4] and [r for _, r in seen] == h.epochs
    assert (h.status, h.stop_reason) == ("done", "callback")


def test_divergence_records_the_step_and_stops():
    data = regression()
    h = fit_sequence(Squeezed(), data, steps=50, lr=1e200, batch_size=1, optimizer="sgd",
                     clip_norm=None, eval_every=100)  # fmt: skip
    assert (h.status, h.stop_reason) == ("diverged", "diverged")
    last = h.epochs[-1]["step"]
    assert 0 < last < 50 and h.message == f"non-finite training loss at step {last}"
    assert len(h.epochs) == 2  # step 0 and the step whose loss was not finite
    assert set(h.epochs[-1]) == {"step", "train_loss", "grad_norm", "clipped", "valid_loss",
                                 "valid_mse", "test_loss", "test_mse"}  # fmt: skip
    assert math.isfinite(h.epochs[-1]["train_loss"])  # the steps before, not the bad one


def test_a_step_with_a_nonfinite_gradient_is_skipped_and_counts_zero():
    """Example 3 has an input of 1e250 (weight 0) and a residual of 1e100: its squared error
    is finite, its gradient overflows. The clipped step is skipped (``on_nonfinite="skip"``),
    its norm counts 0, its loss counts."""
    data = regression()
    x, y = data.train.x.clone(), data.train.y.clone()
    x[3], y[3] = torch.tensor([1e250, 0.0], dtype=D), -1e100
    big = Dataset("tiny", Split(x, y), data.valid, data.test, task="regression")
    m = Squeezed(w=(0.0, -0.1))
    h = fit_sequence(m, big, steps=1, lr=0.1, batch_size=5, optimizer="sgd", clip_norm=1.0,
                     eval_every=1)  # fmt: skip
    rec = h.epochs[1]
    assert h.status == "done" and rec["grad_norm"] == 0.0 and rec["clipped"] == 0.0
    assert rec["train_loss"] == pytest.approx(1e200 / 5, rel=1e-6)
    assert m.lin.weight.tolist() == [[0.0, -0.1]] and float(m.lin.bias.detach()) == 0.2  # skipped


# ---------------------------------------------------------------- evaluate_split
@pytest.mark.parametrize("batch_size", [1, 2, 1000])
@pytest.mark.parametrize("training", [True, False])
def test_evaluate_split_exact(batch_size, training):
    class Same(nn.Module):
        def forward(self, x):
            return x

    m = Same().train(training)
    out = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=D)
    y = torch.ones(5, dtype=D)
    s = Split(out, y)
    assert evaluate_split(m, s, "regression", batch_size=batch_size) == {"loss": 6.0, "mse": 6.0}
    assert m.training is training

    def worst(o, t):
        return (o - t).abs().max()

    got = evaluate_split(m, s, "regression", loss=worst, batch_size=batch_size)
    want = sum(float((out[i : i + batch_size] - 1).max()) * len(out[i : i + batch_size])
               for i in range(0, 5, batch_size)) / 5  # fmt: skip
    assert got == {"loss": pytest.approx(want, rel=1e-15), "mse": 6.0}
    logits = torch.tensor([[3.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0], [0, 0, 4.0], [1.0, 0, 0]],
                          dtype=D)  # fmt: skip
    labels = torch.tensor([0, 1, 1, 2, 2])
    c = Split(logits, labels)
    got = evaluate_split(m, c, "classification", batch_size=batch_size)
    assert got == {"loss": pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-14),
                   "error": 2 / 5}  # fmt: skip
    got = evaluate_split(m, c, "classification", loss=lambda o, t: o.sum() * 0 + 1.5,
                         batch_size=batch_size)  # fmt: skip
    assert got == {"loss": pytest.approx(1.5, rel=1e-15), "error": 2 / 5}
    empty = Split(torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64))
    assert evaluate_split(m, empty, "classification") == {"loss": 0.0, "error": 0.0}
    assert evaluate_split(m, Split(torch.zeros(0), torch.zeros(0)), "regression") == {
        "loss": 0.0, "mse": 0.0}  # fmt: skip
    one = Split(torch.tensor([3.0], dtype=D), torch.tensor([1.0], dtype=D))
    assert evaluate_split(m, one, "regression") == {"loss": 4.0, "mse": 4.0}
    one = Split(torch.tensor([[0.0, 2.0]], dtype=D), torch.tensor([0]))
    assert evaluate_split(m, one, "classification")["error"] == 1.0
    assert m.training is training


def test_evaluate_split_restores_the_mode_after_an_error():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    m = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        evaluate_split(m, Split(torch.zeros(2, 1), torch.zeros(2)), "regression")
    assert m.training


def test_an_empty_split_is_not_recorded():
    data = regression()
    no_valid = Dataset("tiny", data.train, Split(torch.zeros(0, 2, dtype=D), torch.zeros(0,
                       dtype=D)), data.test, task="regression")  # fmt: skip
    h = fit_sequence(Squeezed(), no_valid, steps=1, eval_every=1)
    assert set(h.epochs[0]) == {"step", "test_loss", "test_mse"}


def test_classification_records_the_error():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, generator=g, dtype=D)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    data = Dataset("c", Split(x, y), Split(x, y), Split(x, y), n_classes=3)
    m = nn.Linear(2, 3, dtype=D)
    h = fit_sequence(m, data, steps=1, lr=0.1, batch_size=3, eval_every=1)
    for rec in h.epochs:
        assert set(rec) - {"train_loss", "grad_norm", "clipped"} == {
            "step", "valid_loss", "valid_error", "test_loss", "test_error"}  # fmt: skip
    with torch.no_grad():
        out = m(x)
    assert h.epochs[-1]["test_error"] == float((out.argmax(-1) != y).double().mean())
    assert h.epochs[-1]["test_loss"] == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-12)


# ---------------------------------------------------------------- invalid inputs, signature
BAD = [
    ({"steps": -1}, "steps=-1 is invalid: expected a non-negative int"),
    ({"steps": 2.0}, "steps=2.0 is invalid: expected a non-negative int"),
    ({"eval_every": 0}, "eval_every=0 is invalid: expected an int > 0"),
    ({"eval_every": 1.0}, "eval_every=1.0 is invalid: expected an int > 0"),
    ({"batch_size": 0}, "batch_size=0 is invalid: expected a positive int"),
    ({"batch_size": 2.0}, "batch_size=2.0 is invalid: expected a positive int"),
    ({"eval_batch_size": 0}, "eval_batch_size=0 is invalid: expected a positive int"),
    ({"eval_batch_size": 9.0}, "eval_batch_size=9.0 is invalid: expected a positive int"),
    ({"lr": 0}, "lr=0 is invalid: expected a positive number"),
    ({"lr": -1.0}, "lr=-1.0 is invalid: expected a positive number"),
    ({"lr": math.inf}, "lr=inf is invalid: expected a positive number"),
    ({"lr": "1"}, "lr='1' is invalid: expected a positive number"),
    ({"clip_norm": 0}, "clip_norm=0 is invalid: expected None or a positive number"),
    ({"clip_norm": -0.5}, "clip_norm=-0.5 is invalid: expected None or a positive number"),
]


@pytest.mark.parametrize("bad,message", BAD)
def test_invalid_inputs_with_their_messages(bad, message):
    kw = {"steps": 1, "lr": 0.1} | bad
    with pytest.raises(ValueError) as info:
        fit_sequence(Squeezed(), regression(), **kw)
    assert str(info.value) == message


def test_an_empty_training_set_is_refused():
    data = regression()
    empty = Dataset("nothing", Split(data.train.x[:0], data.train.y[:0]), data.valid, data.test,
                    task="regression")  # fmt: skip
    with pytest.raises(ValueError) as info:
        fit_sequence(Squeezed(), empty, steps=1)
    assert str(info.value) == "data='nothing' is invalid: expected a dataset with training examples"


def test_the_checkpoint_signature(tmp_path):
    ck = Checkpointer(tmp_path / "s.ckpt", min_interval_s=0)
    m = Squeezed()
    fit_sequence(m, regression(), steps=3, lr=0.1, batch_size=2, seed=5, eval_every=2,
                 optimizer="momentum", optimizer_options={"momentum": 0.5}, clip_norm=2.0,
                 checkpoint=ck)  # fmt: skip
    state = read_checkpoint(ck.path)
    assert state["trainer"] == "fit_sequence"
    assert state["signature"] == {
        "steps": 3,
        "lr": 0.1,
        "batch_size": 2,
        "seed": 5,
        "n_train": 5,
        "eval_every": 2,
        "clip_norm": 2.0,
        "optimizer": "momentum",
        "optimizer_options": "{'momentum': 0.5}",
        "parameters": [["lin.weight", [1, 2]], ["lin.bias", [1]]],
        "stateful": [],
    }
    ck = Checkpointer(tmp_path / "t.ckpt", min_interval_s=0)
    m = Squeezed()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    fit_sequence(m, regression(), steps=1, optimizer=opt, checkpoint=ck)
    assert read_checkpoint(ck.path)["signature"]["optimizer"] == "SGD"


def test_the_checkpoint_holds_every_part_under_its_name(tmp_path):
    ck = Checkpointer(tmp_path / "k.ckpt", min_interval_s=0)
    fit_sequence(Squeezed(), regression(), steps=3, lr=0.1, batch_size=2, eval_every=2,
                 checkpoint=ck, regularizer=Counting())  # fmt: skip
    state = read_checkpoint(ck.path)
    assert set(state) == {"trainer", "signature", "step", "pos", "finished", "elapsed", "model",
                          "optimizer", "generator", "perm", "window", "history", "stateful",
                          "rng"}  # fmt: skip
    # 3 steps of 2 out of 5: the second permutation, 2 examples into it
    gen = torch.Generator().manual_seed(0)
    torch.randperm(5, generator=gen)
    assert torch.equal(state["perm"], torch.randperm(5, generator=gen))
    assert torch.equal(state["generator"], gen.get_state())
    assert (state["step"], state["pos"], state["finished"]) == (4, 2, True)
    assert state["window"] == {"loss": 0.0, "norm": 0.0, "clipped": 0, "steps": 0}
    assert state["stateful"] == [{"n": 3}] and state["signature"]["stateful"] == ["Counting"]
    assert set(state["model"]) == {"lin.weight", "lin.bias"}
