"""Which parameters a penalty, constraint or pruning mask acts on.

By default biases are not penalized (``include_biases=False``); a parameter is a bias when its
name ends in ``bias`` or it has one dimension (per member with ``members_axis=True``, where
every tensor has a leading members axis). Parameters named in ``exclude`` (exact names, module
prefixes such as ``"net.1"``, or ``fnmatch`` patterns such as ``"*.0.weight"``) are skipped too.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence

from torch import Tensor, nn

from smithing.regularize.protocol import named_params as _named_params

#: what penalties and constraints act on: a module, a dict name -> tensor, or (name, tensor) pairs
NamedParams = nn.Module | Mapping[str, Tensor] | Iterable[tuple[str, Tensor]]

__all__ = ["NamedParams", "is_bias", "select"]


def is_bias(name: str, param: Tensor, members_axis: bool = False) -> bool:
    """A bias: the name's last component ends in ``bias`` (so the name does: ``bias`` has no
    dot), or one dimension (per member)."""
    return name.endswith("bias") or param.ndim - int(members_axis) <= 1


def _excluded(name: str, exclude: Sequence[str]) -> bool:
    return any(
        name == pat or name.startswith(pat + ".") or fnmatch.fnmatchcase(name, pat)
        for pat in exclude
    )


def select(
    named_params: NamedParams,
    *,
    include_biases: bool = False,
    exclude: Sequence[str] = (),
    members_axis: bool = False,
) -> list[tuple[str, Tensor]]:
    """The ``(name, tensor)`` pairs a penalty or constraint acts on (see the module docstring).

    ``named_params``: a module (its ``named_parameters()``), a dict or ``(name, tensor)`` pairs.
    """
    return [
        (name, p)
        for name, p in _named_params(named_params)
        if not _excluded(name, exclude) and (include_biases or not is_bias(name, p, members_axis))
    ]
