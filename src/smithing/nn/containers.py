"""``ModuleListOf[M]``: an ``nn.ModuleList`` whose items the type checker knows to be ``M``.

``nn.ModuleList`` types every item as ``nn.Module``, so ``stack.layers[0].W`` is
``Tensor | Module`` to a type checker although the list was built from RBMs only. At run time
``ModuleListOf`` *is* ``nn.ModuleList`` (same class, same ``repr``, same state-dict keys);
only the type checker sees the generic subclass below, which narrows ``__iter__`` and
``__getitem__`` to ``M``::

    self.rbms: ModuleListOf[BernoulliRBM] = ModuleListOf(rbms)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar, overload

from torch import nn

__all__ = ["ModuleListOf"]

M = TypeVar("M", bound=nn.Module)

if TYPE_CHECKING:

    class ModuleListOf(nn.ModuleList, Generic[M]):
        def __init__(self, modules: Iterable[M] | None = None) -> None: ...

        def __iter__(self) -> Iterator[M]: ...

        @overload
        def __getitem__(self, idx: slice) -> ModuleListOf[M]: ...

        @overload
        def __getitem__(self, idx: int) -> M: ...

        def __getitem__(self, idx: int | slice) -> M | ModuleListOf[M]: ...

else:
    ModuleListOf = nn.ModuleList
