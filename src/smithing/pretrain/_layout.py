"""The sizes every bipartite layer of :mod:`smithing.pretrain` reads off its weight matrix."""

from __future__ import annotations

from torch import Tensor

__all__ = ["WeightLayout"]


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
