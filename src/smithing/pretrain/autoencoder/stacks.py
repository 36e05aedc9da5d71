"""Stacked denoising autoencoders: the greedy layer trainer :class:`DAEPretrainer`,
:class:`StackedDAE` and :func:`train_sda`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from smithing._registry import check
from smithing.checkpoint import (
    Checkpointer,
)
from smithing.nn import MLP
from smithing.pretrain import greedy as _greedy
from smithing.pretrain.autoencoder.functional import (
    _uniform,
)
from smithing.pretrain.autoencoder.modules import (
    DenoisingAutoencoder,
)
from smithing.pretrain.autoencoder.training import (
    train_autoencoder,
)

__all__ = [
    "DAEPretrainer",
    "StackedDAE",
    "dae_layer",
    "train_sda",
]

# ------------------------------------------------------------------ stacks


class DAEPretrainer:
    """A :class:`~smithing.pretrain.greedy.LayerPretrainer` training one
    :class:`DenoisingAutoencoder` with :func:`train_autoencoder` (``train_kwargs``: epochs, lr,
    batch_size, corruption, rate, emphasis, contractive, ...).

    Codes are the deterministic ``h = s(W x + b)`` of the *clean* inputs (Vincent 2010, stacking:
    the next layer is trained on the uncorrupted codes); ``sample=True`` draws Bernoulli samples
    of sigmoid codes (meaningless, and refused, for tanh / relu codes).
    """

    def __init__(self, dae: DenoisingAutoencoder, **train_kwargs) -> None:
        self.dae = dae
        self.train_kwargs = train_kwargs

    @property
    def activation(self) -> str:
        return self.dae.activation

    @property
    def n_in(self) -> int:
        return self.dae.n_visible

    @property
    def n_out(self) -> int:
        return self.dae.n_hidden

    def fit(
        self,
        x: Tensor,
        *,
        valid: Tensor | None = None,
        generator: torch.Generator | None = None,
        checkpoint: Checkpointer | None = None,
    ) -> dict:
        kwargs = {"valid_data": valid, "generator": generator, **self.train_kwargs}
        if checkpoint is not None:
            kwargs["checkpoint"] = checkpoint
        return train_autoencoder(self.dae, x, **kwargs)

    def encoder(self) -> tuple[Tensor, Tensor]:
        return self.dae.encoder()

    @torch.no_grad()
    def transform(
        self, x: Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        h = self.dae.encode(x)  # (*M, n, n_hidden)
        if not sample:
            return h
        check(self.activation == "sigmoid", "sample", sample, "False for non-sigmoid codes")
        return (_uniform(h, generator) < h).to(h.dtype)


def dae_layer(
    sizes: Sequence[int],
    index: int,
    *,
    activation: str = "sigmoid",
    tied: bool = True,
    loss: str = "cross_entropy",
    members: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> DenoisingAutoencoder:
    """Autoencoder ``index`` of an SdA of ``sizes``: ``sizes[index] -> sizes[index + 1]``.

    The bottom layer (``index == 0``) reconstructs the data with ``loss``; upper layers
    reconstruct codes: cross-entropy for sigmoid codes (in [0, 1], as the Theano SdA), squared
    error with a linear decoder for tanh / relu codes.
    """
    upper = "cross_entropy" if activation == "sigmoid" else "squared_error"
    return DenoisingAutoencoder(
        sizes[index],
        sizes[index + 1],
        activation=activation,
        tied=tied,
        loss=loss if index == 0 else upper,
        members=members,
        generator=generator,
        device=device,
        dtype=dtype,
    )


class StackedDAE(nn.Module):
    """A stacked denoising autoencoder (SdA, Vincent et al. 2010) of ``sizes = [n_visible, n_1,
    ..., n_L]``: one :class:`DenoisingAutoencoder` per layer, the ``DBN``'s interface.

    The bottom layer uses ``loss`` (``"cross_entropy"`` for [0, 1] data, ``"squared_error"`` for
    real data); upper layers reconstruct codes (:func:`dae_layer`). ``members`` makes
    each layer an ensemble of ``M`` independent autoencoders. Training is :func:`train_sda`.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        activation: str = "sigmoid",
        tied: bool = True,
        loss: str = "cross_entropy",
        members: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        sizes = list(sizes)
        check(
            len(sizes) >= 2 and all(isinstance(s, int) and s > 0 for s in sizes),
            "sizes",
            sizes,
            "at least two positive ints [n_visible, n_hidden_1, ...]",
        )
        kw: dict[str, Any] = {
            "activation": activation,
            "tied": tied,
            "loss": loss,
            "members": members,
            "generator": generator,
            "device": device,
            "dtype": dtype,
        }
        self.daes = nn.ModuleList(dae_layer(sizes, i, **kw) for i in range(len(sizes) - 1))
        self.activation = activation

    @classmethod
    def from_layers(cls, daes: Sequence[DenoisingAutoencoder]) -> StackedDAE:
        """An SdA made of already built (or trained) autoencoders, bottom to top (no copies)."""
        daes = list(daes)
        check(len(daes) > 0, "daes", daes, "at least one autoencoder")
        for i, (lower, upper) in enumerate(zip(daes[:-1], daes[1:])):
            check(
                lower.n_hidden == upper.n_visible,
                f"daes[{i + 1}].n_visible",
                upper.n_visible,
                f"the code size of the autoencoder below, {lower.n_hidden}",
            )
        check(
            len({d.activation for d in daes}) == 1,
            "daes",
            [d.activation for d in daes],
            "autoencoders with one code activation",
        )
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.daes = nn.ModuleList(daes)
        self.activation = daes[0].activation
        return self

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.daes[0].n_visible, *(d.n_hidden for d in self.daes))

    @property
    def members(self) -> int | None:
        return self.daes[0].members

    def encoders(self) -> list[tuple[Tensor, Tensor]]:
        return [dae.encoder() for dae in self.daes]

    @torch.no_grad()
    def upward(self, x: Tensor) -> list[Tensor]:
        """The codes of every layer, bottom to top."""
        out = []
        for dae in self.daes:
            x = dae.encode(x)
            out.append(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.upward(x)[-1]

    def to_mlp(self, n_classes: int, activation: str | None = None, **kwargs) -> MLP:
        """Unroll into an MLP, fresh output layer (:func:`smithing.pretrain.greedy.to_mlp`)."""
        return _greedy.to_mlp(self, n_classes, activation or self.activation, **kwargs)


def _per_layer(layers: Mapping | Sequence[Mapping] | None, n: int) -> list[dict]:
    if layers is None:
        return [{} for _ in range(n)]
    if isinstance(layers, Mapping):
        return [dict(layers) for _ in range(n)]
    settings = [dict(s) for s in layers]
    check(len(settings) == n, "layers", f"{len(settings)} settings", f"one per layer ({n})")
    return settings


def train_sda(
    sda: StackedDAE,
    data: Tensor,
    *,
    layers: Mapping | Sequence[Mapping] | None = None,
    valid_data: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, _greedy.LayerPretrainer, dict], None] | None = None,
    checkpoint: Checkpointer | None = None,
) -> list[dict]:
    """Greedy layer-wise training of ``sda`` on ``data (n, sizes[0])``; per-layer histories.

    ``layers`` holds :func:`train_autoencoder` keyword arguments (epochs, lr, batch_size,
    corruption, rate, ...): one mapping for every layer or one per layer (e.g. the Theano
    tutorial's corruption 0.1 / 0.2 / 0.3). Layer ``l`` is trained on the clean codes of layer
    ``l - 1`` (:func:`~smithing.pretrain.greedy.greedy_stack`, ``propagate="probs"``).
    ``checkpoint`` makes it resumable, one child checkpoint per layer
    (``checkpoint.sub("layer<l>")``).
    """
    pretrainers = [
        DAEPretrainer(d, **s) for d, s in zip(sda.daes, _per_layer(layers, len(sda.daes)))
    ]
    return _greedy.greedy_stack(
        pretrainers,
        data,
        valid_data=valid_data,
        generator=generator,
        callback=callback,
        checkpoint=checkpoint,
    ).histories
