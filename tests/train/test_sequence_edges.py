"""fit_sequence's edges left by the first mutation runs (issue 15): a batch that ends exactly at
the end of the data, the defaults in use, the evaluation's batch sizes, a one-example training
set, what callbacks and regularizers receive, optimizer options, the mid-run saves, and a
custom loss that reads its targets."""

from __future__ import annotations

import inspect

import torch
from test_sequence_exact import Squeezed, assert_records, transcription
from tiny_regression import regression
from torch import nn
from torch.nn import functional as F

from smithing.checkpoint import Checkpointer
from smithing.checkpoint.files import read_checkpoint
from smithing.data.base import Dataset, Split
from smithing.train.sequence import evaluate_split, fit_sequence

D = torch.float64


def test_batches_that_end_exactly_at_the_end_of_the_data():
    data = regression(n_train=4)
    m = Squeezed()
    h = fit_sequence(m, data, steps=5, lr=0.1, batch_size=2, optimizer="sgd", clip_norm=None,
                     eval_every=1, seed=3)  # fmt: skip
    w, b, recs = transcription(data, steps=5, lr=0.1, batch_size=2, seed=3, eval_every=1)
    torch.testing.assert_close(m.lin.weight.detach()[0], w, rtol=1e-12, atol=1e-14)
    assert_records(h.epochs, recs)


def test_the_defaults():
    params = inspect.signature(fit_sequence).parameters
    got = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    assert got == {"lr": 1e-3, "batch_size": 50, "optimizer": "rmsprop", "optimizer_options": None,
                   "schedule": None, "schedule_options": None,
                   "loss": None, "seed": 0, "regularizer": None, "clip_norm": 1.0,
                   "eval_every": 50, "eval_batch_size": 1000, "callbacks": (), "progress": None,
                   "device": None, "checkpoint": None}  # fmt: skip
    assert inspect.signature(evaluate_split).parameters["batch_size"].default == 1000


def test_the_defaults_in_use():
    """lr 1e-3, batches of 50 (the whole 5-example set), clipping at 1 and evaluations every 50
    steps: the transcription with those values (inputs scaled so that the norm exceeds 1)."""
    data = regression(x_scale=30.0)
    m = Squeezed()
    h = fit_sequence(m, data, steps=3, optimizer="sgd")
    w, b, recs = transcription(data, steps=3, lr=1e-3, batch_size=5, seed=0, eval_every=50,
                               clip=1.0)  # fmt: skip
    assert_records(h.epochs, recs)
    assert [r["step"] for r in h.epochs] == [0, 3] and h.epochs[-1]["clipped"] == 1.0


class Sizes(nn.Module):
    """A regression model that records the batch sizes it sees."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1, dtype=D)
        self.sizes = []

    def forward(self, x):
        self.sizes.append(len(x))
        return self.lin(x).squeeze(-1)


def big(n):
    g = torch.Generator().manual_seed(5)
    return Split(torch.randn(n, 2, generator=g, dtype=D), torch.randn(n, generator=g, dtype=D))


def test_the_default_batch_size_and_evaluation_interval_are_50():
    """101 examples and 51 steps: every training batch holds 50 examples, and the evaluations
    come at steps 0, 50 and the last (the 5-example test above cannot tell 50 from 51)."""
    data = Dataset("big", big(101), big(1), big(1), task="regression")
    m = Sizes()
    h = fit_sequence(m, data, steps=51, optimizer="sgd")
    assert [r["step"] for r in h.epochs] == [0, 50, 51]
    assert set(m.sizes) - {1, 101} == {50}  # training batches (the rest: evaluations)


def test_the_evaluation_runs_in_batches_of_1000_by_default():
    m = Sizes()
    evaluate_split(m, big(1001), "regression")
    assert m.sizes == [1000, 1]
    data = Dataset("big", big(3), big(1001), Split(big(1).x[:0], big(1).y[:0]),
                   task="regression")  # fmt: skip
    m = Sizes()
    fit_sequence(m, data, steps=0)
    assert m.sizes == [1000, 1]
    m = Sizes()
    fit_sequence(m, data, steps=0, eval_batch_size=1)
    assert m.sizes == [1] * 1001


def test_one_training_example_is_enough():
    data = Dataset("one", big(1), big(2), big(2), task="regression")
    h = fit_sequence(Sizes(), data, steps=2, lr=0.1, eval_every=1)
    assert [r["step"] for r in h.epochs] == [0, 1, 2] and h.status == "done"


class Before:
    def __init__(self):
        self.models = []

    def before_step(self, model, lr):
        self.models.append(model)


def test_what_callbacks_and_regularizers_receive():
    data = regression()
    m = Squeezed()
    reg, seen = Before(), []
    cb = lambda s, r, model: seen.append((s, r, model))  # noqa: E731
    h = fit_sequence(m, data, steps=4, lr=0.1, batch_size=2, optimizer="sgd", eval_every=2,
                     regularizer=reg, callbacks=[cb])  # fmt: skip
    assert reg.models == [m] * 4
    assert seen == [(2, h.epochs[1], m), (4, h.epochs[2], m)]
    assert seen[0][1] is h.epochs[1] and seen[0][2] is m


def test_optimizer_options_are_passed_on():
    data = regression()
    a, b = Squeezed(), Squeezed()
    kw = dict(steps=4, lr=0.1, batch_size=2, optimizer="momentum", clip_norm=None, seed=1)
    fit_sequence(a, data, optimizer_options={"momentum": 0.0}, **kw)
    fit_sequence(b, data, optimizer_options={"momentum": 0.9}, **kw)
    c = Squeezed()
    fit_sequence(c, data, **{**kw, "optimizer": "sgd"})
    assert torch.equal(a.lin.weight, c.lin.weight) and not torch.equal(a.lin.weight, b.lin.weight)


def test_mid_run_saves_count_steps(tmp_path):
    data = regression()
    ck = Checkpointer(tmp_path / "s.ckpt", min_interval_s=0, every_batches=3, save_final=False)
    fit_sequence(Squeezed(), data, steps=7, lr=0.1, batch_size=2, eval_every=100,
                 checkpoint=ck)  # fmt: skip
    state = read_checkpoint(ck.path)  # saves after steps 3 and 6: the next step is 7
    assert ck.saves == 2 and state["step"] == 7


def test_a_custom_classification_loss_gets_the_targets():
    logits = torch.tensor([[3.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0]], dtype=D)
    labels = torch.tensor([0, 2, 2])

    class Same(nn.Module):
        def forward(self, x):
            return x

    got = evaluate_split(Same(), Split(logits, labels), "classification", loss=F.cross_entropy)
    assert got["loss"] == float(F.cross_entropy(logits, labels)) and got["error"] == 1 / 3
