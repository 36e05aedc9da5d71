"""The multilayer perceptron every study trains.

``MLP(n_inputs, hidden, n_outputs, activation)`` is a plain ``nn.Module``: inputs are flattened,
each hidden layer is ``Linear -> activation``, the output layer is ``Linear`` and returns logits
(the loss applies the softmax). Layers are reachable as ``model.linears`` (in order), which the
initializers, diagnostics and pretraining (``to_mlp``) use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from smithing._registry import check
from smithing.nn import activations


class MLP(nn.Module):
    """Fully connected feed-forward network.

    Args:
        n_inputs: number of input features (inputs of other shapes are flattened).
        hidden: sizes of the hidden layers, e.g. ``(500,)`` or ``(1000, 1000)``.
        n_outputs: number of outputs (classes for a classifier).
        activation: hidden activation name (see ``smithing list``).
        input_dropout, dropout: drop probabilities of the inputs and of each hidden layer's
            units (0 disables); ``dropout_mode`` picks the inverted or the lecture's form
            (see :mod:`smithing.nn.dropout`).
    """

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int],
        n_outputs: int,
        activation: str = "relu",
        *,
        input_dropout: float = 0.0,
        dropout: float = 0.0,
        dropout_mode: str = "inverted",
    ) -> None:
        super().__init__()
        check(isinstance(n_inputs, int) and n_inputs > 0, "n_inputs", n_inputs, "a positive int")
        check(
            isinstance(n_outputs, int) and n_outputs > 0, "n_outputs", n_outputs, "a positive int"
        )
        hidden = tuple(int(h) for h in hidden)
        for h in hidden:
            check(h > 0, "hidden", hidden, "positive layer sizes")
        for name, p in (("input_dropout", input_dropout), ("dropout", dropout)):
            check(0.0 <= p < 1.0, name, p, "a probability in [0, 1)")
        activations.get(activation)  # validates the name
        self.sizes = (n_inputs, *hidden, n_outputs)
        self.activation = activation
        layers: list[nn.Module] = [nn.Flatten()]
        if input_dropout > 0:
            layers.append(_dropout(input_dropout, dropout_mode))
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(self.sizes) - 2:
                layers.append(activations.make(activation))
                if dropout > 0:
                    layers.append(_dropout(dropout, dropout_mode))
        self.net = nn.Sequential(*layers)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (batch, n_outputs) logits

    def hidden_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each hidden layer's activation for inputs ``x`` (no dropout)."""
        outs = []
        h = x
        for m in self.net:
            h = m(h)
            if not isinstance(m, (nn.Linear, nn.Flatten, nn.Dropout)) and _is_activation(m):
                outs.append(h)
        return outs

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, activation={self.activation!r}"


def _is_activation(m: nn.Module) -> bool:
    return type(m).__module__.startswith("torch.nn.modules.activation") or isinstance(
        m, nn.Identity
    )


def _dropout(p: float, mode: str) -> nn.Module:
    if mode == "inverted":
        return nn.Dropout(p)
    try:
        from smithing.nn import dropout as _d
    except ImportError as e:  # pragma: no cover
        raise ValueError(f"dropout_mode={mode!r} is invalid: expected 'inverted'") from e
    return _d.make_dropout(p, mode)
