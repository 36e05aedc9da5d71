"""The sizes every bipartite layer of :mod:`smithing.pretrain` reads off its weight matrix, the
sizes a greedy layer trainer reads off its layer, and what the two stacks of such layers (the
:class:`~smithing.pretrain.dbn.DBN`, the :class:`~smithing.pretrain.autoencoder.StackedDAE`)
share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from smithing._registry import check

__all__ = ["LayerSizes", "LayerStack", "WeightLayout", "check_chain", "check_sizes"]

S = TypeVar("S", bound="LayerStack")


class WeightLayout:
    """``n_visible``, ``n_hidden`` and ``members`` of a layer whose weight ``W`` is
    ``(*M, n_visible, n_hidden)`` (``_VISIBLE_AXIS = -2``: the RBMs, the classification RBM) or
    ``(*M, n_hidden, n_visible)`` (``-1``: the autoencoders, ``nn.Linear`` layout). ``members`` is
    the leading axis ``M`` of an ensemble, ``None`` for one model."""

    _VISIBLE_AXIS = -2
    W: Tensor

    @property
    def n_visible(self) -> int:
        return self.W.shape[self._VISIBLE_AXIS]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[-3 - self._VISIBLE_AXIS]  # the other of the last two axes

    @property
    def members(self) -> int | None:
        return self.W.shape[0] if self.W.dim() == 3 else None


class LayerSizes:
    """``n_in`` / ``n_out`` of a greedy layer trainer (a
    :class:`~smithing.pretrain.greedy.LayerPretrainer`): the visible and hidden sizes of the
    layer it trains, :attr:`layer` (an RBM, an autoencoder: a :class:`WeightLayout`)."""

    @property
    def layer(self) -> WeightLayout:
        raise NotImplementedError  # pragma: no cover - each trainer names its layer

    @property
    def n_in(self) -> int:
        return self.layer.n_visible

    @property
    def n_out(self) -> int:
        return self.layer.n_hidden


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """``sizes = [n_visible, n_hidden_1, ...]`` of a stack, checked: at least two positive ints."""
    sizes = list(sizes)
    check(
        len(sizes) >= 2 and all(isinstance(s, int) and s > 0 for s in sizes),
        "sizes",
        sizes,
        "at least two positive ints [n_visible, n_hidden_1, ...]",
    )
    return sizes


def check_chain(layers: Sequence[Any], name: str, kind: str, size: str) -> list[Any]:
    """``layers`` (bottom to top), checked: at least one, and each one's ``n_visible`` equal to
    the ``n_hidden`` of the one below (``kind``: "RBM"; ``size``: "hidden size", for messages)."""
    layers = list(layers)
    check(len(layers) > 0, name, layers, f"at least one {kind}")
    for i, (lower, upper) in enumerate(zip(layers[:-1], layers[1:])):
        check(
            lower.n_hidden == upper.n_visible,
            f"{name}[{i + 1}].n_visible",
            upper.n_visible,
            f"the {size} of the {kind} below, {lower.n_hidden}",
        )
    return layers


class LayerStack(nn.Module):
    """A stack of bipartite layers, bottom to top, in :attr:`LAYERS` (a module list attribute:
    ``"rbms"``, ``"daes"``), each with ``n_visible``, ``n_hidden``, ``members`` and
    ``encoder()``; :meth:`code` is one layer's deterministic code of its inputs."""

    LAYERS = "layers"

    @property
    def stack(self) -> Sequence[Any]:
        """The layers, bottom to top."""
        return getattr(self, self.LAYERS)

    @classmethod
    def _of(cls: type[S], layers: list[Any]) -> S:
        """A stack holding ``layers`` as they are (no copies, no ``__init__``)."""
        from smithing.nn.containers import ModuleListOf

        self = cls.__new__(cls)
        nn.Module.__init__(self)
        setattr(self, cls.LAYERS, ModuleListOf(layers))
        return self

    @property
    def sizes(self) -> tuple[int, ...]:
        """``(n_visible, n_hidden_1, ..., n_hidden_L)``."""
        layers = self.stack
        return (layers[0].n_visible, *(layer.n_hidden for layer in layers))

    @property
    def members(self) -> int | None:
        """The ensemble's member count (every layer's), None for one model."""
        return self.stack[0].members

    def encoders(self) -> list[tuple[Tensor, Tensor]]:
        """Each layer's ``(weight, bias)`` in ``nn.Linear`` layout, bottom to top."""
        return [layer.encoder() for layer in self.stack]

    def code(self, layer: Any, x: Tensor) -> Tensor:
        raise NotImplementedError  # pragma: no cover - each stack says what a code is

    @torch.no_grad()
    def upward(self, x: Tensor) -> list[Tensor]:
        """The codes of every layer for inputs ``x``, bottom to top."""
        out = []
        for layer in self.stack:
            x = self.code(layer, x)
            out.append(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """The top layer's code of ``x``."""
        return self.upward(x)[-1]
