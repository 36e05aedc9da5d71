"""Stacked denoising autoencoders: the greedy layer trainer :class:`DAEPretrainer`,
:class:`StackedDAE` and :func:`train_sda`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from smithing._registry import check
from smithing.checkpoint import (
    Checkpointer,
)
from smithing.history import Callback, History
from smithing.nn import MLP
from smithing.nn.containers import ModuleListOf
from smithing.pretrain import greedy as _greedy
from smithing.pretrain._layout import LayerSizes, LayerStack, check_chain, check_sizes
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


class DAEPretrainer(LayerSizes):
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
    def layer(self) -> DenoisingAutoencoder:
        return self.dae

    def fit(
        self,
        x: Tensor,
        *,
        valid: Tensor | None = None,
        generator: torch.Generator | None = None,
        checkpoint: Checkpointer | None = None,
        progress: Callable[[int, dict], None] | None = None,
    ) -> History:
        kwargs = {"valid_data": valid, "generator": generator, **self.train_kwargs}
        if checkpoint is not None:
            kwargs["checkpoint"] = checkpoint
        if progress is not None:
            kwargs["progress"] = _greedy.chain_progress(kwargs.get("progress"), progress)
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


class StackedDAE(LayerStack):
    """A stacked denoising autoencoder (SdA, Vincent et al. 2010) of ``sizes = [n_visible, n_1,
    ..., n_L]``: one :class:`DenoisingAutoencoder` per layer, the ``DBN``'s interface.

    The bottom layer uses ``loss`` (``"cross_entropy"`` for [0, 1] data, ``"squared_error"`` for
    real data); upper layers reconstruct codes (:func:`dae_layer`). ``members`` makes
    each layer an ensemble of ``M`` independent autoencoders. Training is :func:`train_sda`.
    """

    daes: ModuleListOf[DenoisingAutoencoder]  # bottom to top
    LAYERS = "daes"

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
        sizes = check_sizes(sizes)
        kw: dict[str, Any] = {
            "activation": activation,
            "tied": tied,
            "loss": loss,
            "members": members,
            "generator": generator,
            "device": device,
            "dtype": dtype,
        }
        self.daes = ModuleListOf(dae_layer(sizes, i, **kw) for i in range(len(sizes) - 1))
        self.activation = activation

    @classmethod
    def from_layers(cls, daes: Sequence[DenoisingAutoencoder]) -> StackedDAE:
        """An SdA made of already built (or trained) autoencoders, bottom to top (no copies)."""
        daes = check_chain(daes, "daes", "autoencoder", "code size")
        check(
            len({d.activation for d in daes}) == 1,
            "daes",
            [d.activation for d in daes],
            "autoencoders with one code activation",
        )
        self = cls._of(daes)
        self.activation = daes[0].activation
        return self

    def code(self, layer: DenoisingAutoencoder, x: Tensor) -> Tensor:
        """An autoencoder's code: its encoder on the clean input, ``s(W x + b)``."""
        return layer.encode(x)

    def to_mlp(self, n_classes: int, activation: str | None = None, **kwargs) -> MLP:
        """Unroll into an MLP, fresh output layer (:func:`smithing.pretrain.greedy.to_mlp`)."""
        return _greedy.to_mlp(self, n_classes, activation or self.activation, **kwargs)


def train_sda(
    sda: StackedDAE,
    data: Tensor,
    *,
    layers: Mapping | Sequence[Mapping] | None = None,
    epochs: int | None = None,
    lr: float | Sequence[float] | None = None,
    batch_size: int | None = None,
    optimizer: str | torch.optim.Optimizer | None = None,
    optimizer_options: dict | None = None,
    schedule: str | Callable[[int], float] | None = None,
    schedule_options: dict | None = None,
    valid_data: Tensor | None = None,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
    progress: Callable[[int, dict], None] | None = None,
    device: torch.device | str | None = None,
    checkpoint: Checkpointer | None = None,
    layer_callback: Callable[[int, _greedy.LayerPretrainer, History], None] | None = None,
    callback: Callable[[int, _greedy.LayerPretrainer, History], None] | None = None,
) -> list[History]:
    """Greedy layer-wise training of ``sda`` on ``data (n, sizes[0])``; one
    :class:`~smithing.history.History` per layer, bottom to top.

    Layer ``l`` is trained by :func:`train_autoencoder` on the clean codes of layer ``l - 1``
    (:func:`~smithing.pretrain.greedy.greedy_stack`, ``propagate="probs"``).

    Args:
        sda: the :class:`StackedDAE` (trained in place).
        data: ``(n, sizes[0])`` (or ``(M, n, sizes[0])`` for an ensemble).
        layers: :func:`train_autoencoder` keyword arguments (corruption, rate, emphasis,
            contractive, early_stopping, ...): one mapping for every layer or one per layer
            (e.g. the Theano tutorial's corruption 0.1 / 0.2 / 0.3).
        epochs: every layer's default epochs for :func:`train_autoencoder` (a layer's own
            ``layers`` entry wins; None leaves that trainer's default), as the next six.
        lr: every layer's default learning rate.
        batch_size: every layer's default batch size.
        optimizer: every layer's default optimizer name. A ready optimizer cannot be shared
            (each layer has its own parameters): give one per layer in ``layers``.
        optimizer_options: every layer's default optimizer options.
        schedule: every layer's default schedule.
        schedule_options: every layer's default schedule options.
        callbacks: handed to every layer's trainer (``cb(epoch, record, layer_module)``,
            1-based epochs restarting at each layer); a callback returning True ends *that
            layer's* training (its History says ``stop_reason="callback"``) and the next layer
            starts.
        progress: handed to every layer's trainer (``progress(epoch, record)``).
        device: move the stack, ``data`` and ``valid_data`` there first.
        valid_data: propagated alongside and handed to each layer for monitoring.
        generator: drives every layer's training.
        checkpoint: a :class:`~smithing.checkpoint.Checkpointer` or a path; makes it
            resumable, one child checkpoint per layer
            (``checkpoint.sub("layer<l>")``).
        layer_callback: ``layer_callback(index, pretrainer, history)`` after each layer.
        callback: deprecated alias of ``layer_callback``; warns.

    Returns:
        ``[History, ...]``, one per layer (see :func:`train_autoencoder`).
    """
    return _greedy.train_greedy(
        "train_sda",
        sda,
        data,
        lambda dae, s: DAEPretrainer(dae, **s),
        layers=layers,
        what="layer",
        valid_data=valid_data,
        generator=generator,
        device=device,
        checkpoint=checkpoint,
        layer_callback=layer_callback,
        callback=callback,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        optimizer=optimizer,
        optimizer_options=optimizer_options,
        schedule=schedule,
        schedule_options=schedule_options,
        callbacks=callbacks,
        progress=progress,
    )
