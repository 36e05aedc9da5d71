"""A linear regression on five float64 examples and a float64 transcription of mini-batch SGD
on it (the same ``randperm`` data order as ``fit``, hand-derived gradients of the mean squared
error): the exact reference of ``tests/train/test_loop_exact.py`` and
``tests/train/test_ensemble_exact.py``."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from smithing.data.base import Dataset, Split

D = torch.float64
W_TRUE = torch.tensor([1.0, -2.0], dtype=D)
FINAL_KEYS = ["train_loss", "train_error", "valid_loss", "valid_error", "test_loss", "test_error"]


def split(n, seed, x_scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = x_scale * torch.randn(n, 2, generator=g, dtype=D)
    y = x @ W_TRUE + 0.5 + 0.1 * torch.randn(n, generator=g, dtype=D)
    return Split(x, y)


def regression(n_train=5, x_scale=1.0):
    splits = [split(n, seed, x_scale) for n, seed in ((n_train, 1), (3, 2), (2, 3))]
    return Dataset("tiny", *splits, task="regression", input_shape=(2,))


def linear(w=(0.3, -0.1), b=0.2):
    m = nn.Linear(2, 1, dtype=D)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([w], dtype=D))
        m.bias.fill_(b)
    return m


def mse(w, b, s):
    r = s.x @ w + b - s.y
    return float((r**2).mean())


def transcription(data, *, epochs, lr, batch_size, seed, shuffle=True, factor=None, clip=None,
                  l2=0.0, scale=1.0, w=(0.3, -0.1), b=0.2):  # fmt: skip
    """Mini-batch SGD on ``y ~ x @ w + b`` with the loss ``scale`` times the mean squared
    error, in float64: the gradients ``2 s X^T r / B`` and ``2 s mean(r)`` (plus ``2 * l2 * w``
    of a penalty ``l2 * |w|^2``), optionally clipped to global norm ``clip``; the records
    ``fit`` writes (the validation loss is the scaled one, the error the plain MSE)."""
    w, b = torch.tensor(w, dtype=D), torch.tensor(b, dtype=D)
    x, y = data.train.x, data.train.y
    n = len(y)
    gen = torch.Generator().manual_seed(seed)
    recs = []
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        lr_e = lr * (1.0 if factor is None else factor(epoch - 1))
        loss_sum = 0.0
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            xb, yb = x[idx], y[idx]
            r = xb @ w + b - yb
            loss_sum += scale * float((r**2).mean()) * len(idx)
            gw = 2 * scale * xb.T @ r / len(idx) + 2 * l2 * w
            gb = 2 * scale * r.mean()
            if clip is not None:
                norm = math.sqrt(float((gw**2).sum() + gb**2))
                if norm > clip:
                    gw, gb = gw * clip / (norm + 1e-6), gb * clip / (norm + 1e-6)
            w, b = w - lr_e * gw, b - lr_e * gb
        valid = mse(w, b, data.valid)
        recs.append(
            {
                "epoch": epoch,
                "train_loss": loss_sum / n,
                "lr": lr_e,
                "valid_loss": scale * valid,
                "valid_error": valid,
            }  # fmt: skip
        )
    return w, b, recs


def assert_records(hist, recs, rel=1e-12):
    assert len(hist.epochs) == len(recs)
    for got, want in zip(hist.epochs, recs):
        got = dict(got)
        seconds = got.pop("seconds")
        assert 0 <= seconds < 60
        assert set(got) == set(want), (got, want)
        assert got["epoch"] == want["epoch"]
        for k in ("train_loss", "lr", "valid_loss", "valid_error"):
            assert got[k] == pytest.approx(want[k], rel=rel, abs=1e-15), k


def assert_weights(model, w, b, rtol=1e-12):
    torch.testing.assert_close(model.weight.detach()[0], w, rtol=rtol, atol=1e-14)
    torch.testing.assert_close(model.bias.detach()[0], b, rtol=rtol, atol=1e-14)


class Counting:
    """A stateful regularizer for the checkpoint tests: it counts the steps it saw
    (``after_step`` is called with the model or the stacked parameters and the learning
    rate(s)) and saves the count in the checkpoint under its class name, ``"Counting"``."""

    def __init__(self):
        self.n = 0

    def after_step(self, params, lr):
        self.n += 1

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state):
        self.n = state["n"]
