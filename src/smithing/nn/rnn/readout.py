"""Readouts over an Elman network (regression, classification), the per-step constraint and
penalty hooks, and models built from a run's configuration."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from smithing._registry import check
from smithing.nn.rnn.elman import (
    ElmanRNN,
)

__all__ = [
    "RNNClassifier",
    "RNNRegressor",
    "RNN_OPTIONS",
    "RecurrentRegularizer",
    "enforce_constraints",
    "penalties",
    "readout_from_config",
]

# ------------------------------------------------------------------------------------------------
# readouts
# ------------------------------------------------------------------------------------------------


class _RNNReadout(nn.Module):
    task = "regression"

    def __init__(
        self, n_in: int, n_hidden: int, n_out: int, *, generator=None, **rnn_kwargs
    ) -> None:
        super().__init__()
        check(isinstance(n_out, int) and n_out > 0, "n_out", n_out, "a positive int")
        self.rnn = ElmanRNN(n_in, n_hidden, generator=generator, **rnn_kwargs)
        w = self.rnn.weight_hh
        self.readout = nn.Linear(n_hidden, n_out, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            bound = 1.0 / math.sqrt(n_hidden)  # torch's nn.Linear bound, with our generator
            self.readout.weight.uniform_(-bound, bound, generator=generator)
            self.readout.bias.zero_()

    def _head(self, h: Tensor) -> Tensor:
        return self.readout(h)

    def forward(self, x: Tensor) -> Tensor:
        _, h_last = self.rnn(x)  # (batch, H)
        return self._head(h_last)

    def forward_with_states(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(prediction, [h_1, ..., h_T])`` (eager loop, every state an autograd node)."""
        h_last, states = self.rnn.forward_with_states(x)
        return self._head(h_last), states

    def enforce_constraint(self) -> None:
        self.rnn.enforce_constraint()

    def penalty(self) -> Tensor:
        return self.rnn.penalty()


class RNNRegressor(_RNNReadout):
    """``y = w^T h_T + c``: an :class:`ElmanRNN` read out linearly at the last step.

    Output ``(batch,)`` when ``n_out == 1`` (matching a ``(n,)`` target such as the adding
    problem's), else ``(batch, n_out)``. ``rnn_kwargs`` go to :class:`ElmanRNN`.
    """

    task = "regression"

    def __init__(self, n_in: int, n_hidden: int, n_out: int = 1, **rnn_kwargs) -> None:
        super().__init__(n_in, n_hidden, n_out, **rnn_kwargs)
        self.n_out = n_out

    def _head(self, h: Tensor) -> Tensor:
        y = self.readout(h)  # (batch, n_out)
        return y.squeeze(-1) if self.n_out == 1 else y


class RNNClassifier(_RNNReadout):
    """Logits ``W_out h_T + c`` ``(batch, n_classes)`` of an :class:`ElmanRNN` (softmax in the
    loss). ``rnn_kwargs`` go to :class:`ElmanRNN`."""

    task = "classification"

    def __init__(self, n_in: int, n_hidden: int, n_classes: int, **rnn_kwargs) -> None:
        super().__init__(n_in, n_hidden, n_classes, **rnn_kwargs)
        self.n_classes = n_classes


def enforce_constraints(model: nn.Module) -> None:
    """Apply the constraint of every :class:`ElmanRNN` in ``model`` (after ``optimizer.step()``)."""
    for m in model.modules():
        if isinstance(m, ElmanRNN):
            m.enforce_constraint()


def penalties(model: nn.Module) -> Tensor:
    """Sum of :meth:`ElmanRNN.penalty` over the model's RNN layers (add it to the loss)."""
    terms = [m.penalty() for m in model.modules() if isinstance(m, ElmanRNN)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


# ------------------------------------------------------------------------------------------------
# a run configuration's model, and the trainers' regularizer protocol
# ------------------------------------------------------------------------------------------------

#: the :class:`ElmanRNN` options a run configuration may set (:func:`readout_from_config`)
RNN_OPTIONS = (
    "activation",
    "init",
    "scale",
    "input_std",
    "constraint",
    "constraint_options",
    "identity_penalty",
    "fused",
    "compile",
)


def readout_from_config(
    config: Mapping, n_in: int, n_out: int, task: str, *, seed: int = 0, device=None
) -> RNNRegressor | RNNClassifier:
    """The readout model a run configuration describes.

    ``config["hidden"]`` is the number of hidden units; the keys of :data:`RNN_OPTIONS` present
    in ``config`` and not None go to :class:`ElmanRNN` (the others keep their defaults; other
    keys are ignored). ``task`` ``"classification"`` gives an :class:`RNNClassifier` with
    ``n_out`` classes, else an :class:`RNNRegressor`. The weights come from a CPU generator
    seeded with ``seed`` (``torch.Generator().manual_seed(seed)``), so a seed gives the same
    network on every device.
    """
    check(
        task in ("classification", "regression"),
        "task",
        task,
        "'classification' or 'regression'",
    )
    kw = {k: config[k] for k in RNN_OPTIONS if config.get(k) is not None}
    gen = torch.Generator().manual_seed(int(seed))
    cls = RNNClassifier if task == "classification" else RNNRegressor
    return cls(n_in, int(config["hidden"]), n_out, generator=gen, device=device, **kw)


class RecurrentRegularizer:
    """The trainers' regularizer protocol for models with :class:`ElmanRNN` layers.

    ``penalty(model)`` is :func:`penalties` (the identity penalties, added to the loss) and
    ``after_step(model, lr)`` is :func:`enforce_constraints` (the projections after every
    optimizer step: projected gradient descent). Pass an instance as ``regularizer=`` to
    :func:`smithing.train.sequence.fit_sequence` or :func:`smithing.train.fit`.
    """

    def penalty(self, model: nn.Module) -> Tensor:
        return penalties(model)

    def after_step(self, model: nn.Module, lr: float) -> None:
        enforce_constraints(model)
