"""The multilayer perceptron every study trains.

``MLP(n_inputs, hidden, n_outputs, activation)`` is a plain ``nn.Module``: inputs are flattened,
each hidden layer is ``Linear -> activation``, the output layer is ``Linear`` and returns logits
(the loss applies the softmax). Layers are reachable as ``model.linears`` (in order), which the
initializers, diagnostics and pretraining (``to_mlp``) use.

With ``dropconnect=p > 0`` every hidden ``Linear -> activation`` pair becomes one
:class:`DropConnectHidden` layer (a :class:`~smithing.nn.dropconnect.DropConnectLinear` that is
also an ``nn.Linear``, so ``model.linears``, the initializers and the diagnostics find it) followed
by an ``nn.Identity`` placeholder where the activation module was: the parameter names
(``net.1.weight``, ``net.3.weight``, ...) are those of the plain MLP, so state dicts move between
the two. The output layer stays a plain ``nn.Linear`` (Wan et al. 2013 drop the connections of
hidden layers; a DropConnect output layer would need the softmax inside its moment matching).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from smithing._registry import check
from smithing.nn import activations
from smithing.nn.dropconnect import DropConnectLinear

__all__ = ["DropConnectHidden", "MLP"]


class _LinearShell(nn.Linear):
    """``nn.Linear`` as a base class whose ``__init__`` leaves the parameters to a subclass."""

    def __init__(self) -> None:  # DropConnectLinear.__init__ calls super().__init__()
        nn.Module.__init__(self)


class DropConnectHidden(DropConnectLinear, _LinearShell):
    """A :class:`DropConnectLinear` (``a((M * W) v + m_b * b)``, Wan et al. 2013) that is also an
    ``nn.Linear``.

    Everything (forward, masks, inference, ``reset_parameters``) is ``DropConnectLinear``'s; the
    ``nn.Linear`` base only makes ``isinstance(m, nn.Linear)`` true, so code that selects layers by
    that type (``MLP.linears``, :func:`smithing.init.apply`, gradient diagnostics) treats it like
    the ``nn.Linear`` it replaces. Unlike a plain ``nn.Linear`` its output is ``a(u)``, after the
    activation; its pre-activation is ``preactivation(x)`` (the mean over masks), which LSUV
    normalizes.
    """

    # torch infers nn.Linear.bias as Parameter (from its `self.bias = Parameter(...)`) although
    # nn.Linear(bias=False) sets it to None; this layer's bias is DropConnectLinear's
    bias: Tensor | None  # type: ignore[assignment]


class MLP(nn.Module):
    """Fully connected feed-forward network.

    Args:
        n_inputs: number of input features (inputs of other shapes are flattened).
        hidden: sizes of the hidden layers, e.g. ``(500,)`` or ``(1000, 1000)``.
        n_outputs: number of outputs (classes for a classifier).
        activation: hidden activation name (see ``smithing list``).
        input_dropout: drop probability of the inputs (0 disables).
        dropout: drop probability of each hidden layer's units (0 disables).
        dropout_mode: the dropout form, ``"inverted"`` (default), ``"lecture"`` or
            ``"gaussian"`` (:mod:`smithing.nn.dropout`).
        dropconnect: drop probability of each hidden layer's weights (and biases), one mask per
            example (Wan et al., "Regularization of Neural Networks using DropConnect", ICML
            2013); 0 disables and leaves the network exactly the plain MLP.
        dropconnect_options: keyword arguments of :class:`DropConnectLinear` (``inference``,
            ``samples``, ``drop_bias``, ``per_example``, ``max_mask_elements``).
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
        dropconnect: float = 0.0,
        dropconnect_options: dict | None = None,
    ) -> None:
        super().__init__()
        check(isinstance(n_inputs, int) and n_inputs > 0, "n_inputs", n_inputs, "a positive int")
        check(
            isinstance(n_outputs, int) and n_outputs > 0, "n_outputs", n_outputs, "a positive int"
        )
        hidden = tuple(int(h) for h in hidden)
        for h in hidden:
            check(h > 0, "hidden", hidden, "positive layer sizes")
        for name, p in (
            ("input_dropout", input_dropout),
            ("dropout", dropout),
            ("dropconnect", dropconnect),
        ):
            check(0.0 <= p < 1.0, name, p, "a probability in [0, 1)")
        activations.get(activation)  # validates the name
        self._arguments = {
            "n_inputs": n_inputs,
            "hidden": list(hidden),
            "n_outputs": n_outputs,
            "activation": activation,
            "input_dropout": float(input_dropout),
            "dropout": float(dropout),
            "dropout_mode": dropout_mode,
            "dropconnect": float(dropconnect),
            "dropconnect_options": dict(dropconnect_options or {}),
        }
        self.sizes = (n_inputs, *hidden, n_outputs)
        self.activation = activation
        self.dropconnect = float(dropconnect)
        layers: list[nn.Module] = [nn.Flatten()]
        if input_dropout > 0:
            layers.append(_dropout(input_dropout, dropout_mode))
        opts = dict(dropconnect_options or {})
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            hidden_layer = i < len(self.sizes) - 2
            if hidden_layer and dropconnect > 0:
                layers.append(DropConnectHidden(a, b, dropconnect, activation=activation, **opts))
                layers.append(nn.Identity())  # the activation is inside; keeps the indices
            else:
                layers.append(nn.Linear(a, b))
            if hidden_layer:
                if dropconnect == 0:
                    layers.append(activations.make(activation))
                if dropout > 0:
                    layers.append(_dropout(dropout, dropout_mode))
        self.net = nn.Sequential(*layers)

    def describe(self) -> dict:
        """The constructor's arguments as a JSON-able dict: ``MLP(**model.describe())``
        builds the same architecture (used by :func:`smithing.models.save_model`)."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._arguments.items()}

    @property
    def linears(self) -> list[nn.Linear]:
        """The affine layers in order (``DropConnectHidden`` ones included)."""
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
        extra = f", dropconnect={self.dropconnect}" if self.dropconnect else ""
        return f"sizes={self.sizes}, activation={self.activation!r}{extra}"


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
