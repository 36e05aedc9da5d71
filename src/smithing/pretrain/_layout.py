"""The sizes every bipartite layer of :mod:`smithing.pretrain` reads off its weight matrix, and
the sizes a greedy layer trainer reads off its layer."""

from __future__ import annotations

from torch import Tensor

__all__ = ["LayerSizes", "WeightLayout"]


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
