"""The thin module :class:`DenoisingAutoencoder`: parameters, and calls into :mod:`.functional`."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from smithing._registry import check
from smithing.pretrain._layout import WeightLayout
from smithing.pretrain.autoencoder.functional import (
    CODE_ACTIVATIONS,
    DECODERS,
    LOSSES,
    _encode,
    _row,
    _t,
    dae_loss,
)

__all__ = [
    "DenoisingAutoencoder",
]

# ------------------------------------------------------------------ module


class DenoisingAutoencoder(WeightLayout, nn.Module):
    """An (optionally denoising / contractive) autoencoder ``n_visible -> n_hidden``.

    Parameters: ``W (*M, n_hidden, n_visible)`` (``nn.Linear`` layout), code bias ``b (*M,
    n_hidden)``, reconstruction bias ``c (*M, n_visible)`` and, untied, ``W_dec (*M, n_visible,
    n_hidden)``. ``activation`` of the codes: sigmoid, tanh or relu; ``loss``
    ``"cross_entropy"`` (data in [0, 1], sigmoid decoder) or ``"squared_error"`` (decoder
    ``"linear"`` by default, or ``"sigmoid"``). Initialization: ``U(+-gain sqrt(6 / (n_visible +
    n_hidden)))``, gain 4 for sigmoid codes and 1 otherwise (Theano tutorial), zero biases.
    The module holds parameters only: corruption and training are :func:`train_autoencoder`.
    """

    _VISIBLE_AXIS = -1  # W is (*M, n_hidden, n_visible), nn.Linear layout

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        activation: str = "sigmoid",
        tied: bool = True,
        loss: str = "cross_entropy",
        decoder: str | None = None,
        members: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check(
            isinstance(n_visible, int) and n_visible > 0, "n_visible", n_visible, "a positive int"
        )
        check(isinstance(n_hidden, int) and n_hidden > 0, "n_hidden", n_hidden, "a positive int")
        check(
            activation in CODE_ACTIVATIONS,
            "activation",
            activation,
            f"one of {tuple(CODE_ACTIVATIONS)}",  # the names, not the table of functions
        )
        check(loss in LOSSES, "loss", loss, f"one of {LOSSES}")
        decoder = decoder or ("sigmoid" if loss == "cross_entropy" else "linear")
        check(decoder in DECODERS, "decoder", decoder, f"one of {DECODERS}")
        if loss == "cross_entropy":
            check(decoder == "sigmoid", "decoder", decoder, "'sigmoid' for the cross-entropy loss")
        check(
            members is None or (isinstance(members, int) and members > 0),
            "members",
            members,
            "None or a positive int",
        )
        self.activation, self.loss_name, self.decoder, self.tied = activation, loss, decoder, tied
        lead = () if members is None else (members,)
        kw: dict[str, Any] = {"device": device, "dtype": dtype or torch.get_default_dtype()}
        bound = (4.0 if activation == "sigmoid" else 1.0) * math.sqrt(6.0 / (n_visible + n_hidden))

        def uniform(shape):
            # drawn on the generator's device (CPU without one): a CPU generator gives the same
            # weights on any device; a CUDA generator draws on the GPU
            gen_dev = generator.device if generator is not None else None
            u = torch.rand(shape, generator=generator, dtype=kw["dtype"], device=gen_dev)
            return ((2 * u - 1) * bound).to(kw["device"])

        self.W = nn.Parameter(uniform((*lead, n_hidden, n_visible)))  # (*M, n_hidden, n_visible)
        self.b = nn.Parameter(torch.zeros((*lead, n_hidden), **kw))  # code bias
        self.c = nn.Parameter(torch.zeros((*lead, n_visible), **kw))  # reconstruction bias
        self.W_dec = None if tied else nn.Parameter(uniform((*lead, n_visible, n_hidden)))

    @property
    def decoder_weight(self) -> Tensor:
        """``W' (*M, n_visible, n_hidden)``: ``W^T`` when tied."""
        return _t(self.W) if self.W_dec is None else self.W_dec

    def encode(self, x: Tensor) -> Tensor:
        """Codes ``h = s(x W^T + b)``, ``(*M, batch, n_hidden)``."""
        return _encode(x.to(self.W.dtype), self.W, self.b, self.activation)[0]

    def decode(self, h: Tensor) -> Tensor:
        """Reconstruction ``z = s'(h W'^T + c)``, ``(*M, batch, n_visible)``."""
        a = h @ _t(self.decoder_weight) + _row(self.c)
        return torch.sigmoid(a) if self.decoder == "sigmoid" else a

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction of (uncorrupted) ``x``."""
        return self.decode(self.encode(x))

    def loss(
        self,
        x: Tensor,
        x_tilde: Tensor | None = None,
        *,
        weights: Tensor | None = None,
        contractive: float = 0.0,
    ) -> Tensor:
        """:func:`dae_loss` of this autoencoder, ``(*M,)``; ``x_tilde=None`` means ``x``."""
        x = x.to(self.W.dtype)
        return dae_loss(
            x,
            x if x_tilde is None else x_tilde.to(self.W.dtype),
            self.W,
            self.b,
            self.c,
            self.W_dec,
            activation=self.activation,
            decoder=self.decoder,
            loss=self.loss_name,
            weights=weights,
            contractive=contractive,
        )

    def encoder(self) -> tuple[Tensor, Tensor]:
        """``(weight (*M, n_hidden, n_visible), bias (*M, n_hidden))`` in ``nn.Linear`` layout
        (detached copies): ``codes = activation(x @ weight.T + bias)``."""
        return self.W.detach().clone(), self.b.detach().clone()

    def extra_repr(self) -> str:
        m = "" if self.members is None else f", members={self.members}"
        return (
            f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, activation="
            f"{self.activation!r}, tied={self.tied}, loss={self.loss_name!r}{m}"
        )
