"""Max-norm constraint on each hidden unit's incoming weight vector.

Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov, "Dropout: A Simple Way to Prevent
Neural Networks from Overfitting", JMLR 15, 2014, Sec. 5.1: after every update, the incoming
weight vector ``w_j`` of every hidden unit ``j`` is projected onto the ball ``||w_j||_2 <= c``::

    w_j <- w_j * min(1, c / ||w_j||_2)

**Which axis.** ``nn.Linear.weight`` is ``(out_features, in_features)``: unit ``j``'s incoming
vector is *row* ``j``, so the norm is taken over ``dim=1`` (``in_features``; ``dim=-1`` here, the
default). The argument ``dim`` names the dimension the norm **reduces over**. This is a recurring
bug because the two usual references disagree:

* ``torch.renorm(w, p=2, dim=0, maxnorm=c)`` names the dimension that **indexes** the sub-tensors
  (dim 0 = one sub-tensor per output unit), i.e. the opposite of ours: our ``dim=1`` is
  ``torch.renorm(..., dim=0)``. It also scales by ``c / (norm + 1e-7)``; we scale by exactly
  ``c / norm``.
* Keras' ``MaxNorm(axis=0)`` reduces over ``axis=0``, like ours, but Keras' ``Dense`` kernel is
  ``(in, out)``, the transpose of PyTorch's; its ``axis=0`` is our ``dim=1``.

Ensembles: with ``members_axis=True`` the weight is ``(members, out, in)``, ``dim`` still indexes
the per-member weight (so ``dim=1`` and ``dim=-1`` both mean ``in``), and ``c`` may be a float or a
``(members,)`` tensor, one radius per member.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from smithing._registry import check
from smithing.regularize.penalties import NamedParams, Strength, per_member, select

__all__ = ["MaxNorm", "max_norm_", "unit_norms"]


def _reduce_dim(w: Tensor, dim: int, members_axis: bool) -> int:
    ndim = w.ndim - int(members_axis)
    check(ndim >= 2, "weight", tuple(w.shape), "a weight with >= 2 dims per member")
    check(
        -ndim <= dim < ndim,
        "dim",
        dim,
        f"a dimension of the per-member weight in [{-ndim}, {ndim})",
    )
    return dim % ndim + int(members_axis)


def unit_norms(w: Tensor, *, dim: int = -1, members_axis: bool = False) -> Tensor:
    """L2 norms of the incoming vectors: ``||w||_2`` reduced over ``dim`` (kept as size 1)."""
    d = _reduce_dim(w, dim, members_axis)
    return torch.linalg.vector_norm(w, dim=d, keepdim=True)  # (out, 1) or (members, out, 1)


@torch.no_grad()
def max_norm_(w: Tensor, c: Strength, *, dim: int = -1, members_axis: bool = False) -> Tensor:
    """In place ``w_j <- w_j min(1, c / ||w_j||_2)`` with the norm over ``dim``; returns ``w``.

    Args:
        w: weight, ``(out, in)`` for ``nn.Linear`` or ``(members, out, in)`` with
            ``members_axis`` (other layouts: ``dim`` picks the one axis reduced over).
        c: the radius (> 0), a float or ``(members,)``.
        dim: the dimension the norm reduces over, per member; ``-1`` (= 1 for ``nn.Linear``)
            gives each output unit's incoming vector.
    """
    c_t = per_member(c, w, members_axis, "c")
    check(bool((c_t > 0).all()), "c", c, "a positive radius")
    norms = unit_norms(w, dim=dim, members_axis=members_axis)
    scale = (c_t / norms).clamp_(max=1.0)  # min(1, c/||w_j||), Srivastava 2014 Sec. 5.1
    return w.mul_(scale)  # zero rows: c/0 = inf -> 1, unchanged


@dataclass(frozen=True)
class MaxNorm:
    """Max-norm constraint on a model's weight matrices, applied after every optimizer step.

    ``MaxNorm(c=3.0).apply_after_step(model)`` projects every weight matrix (biases excluded
    unless ``include_biases``; names in ``exclude`` skipped, same rules as
    :class:`smithing.regularize.Penalty`). ``only`` restricts it to the named parameters (e.g.
    the hidden layers). ``c`` may be ``(members,)`` with ``members_axis``.

    A regularizer of the trainers' protocol (:mod:`smithing.regularize.protocol`):
    ``fit(model, data, regularizer=MaxNorm(c=3.0))`` calls :meth:`after_step` after every
    optimizer step; ``fit_ensemble`` takes ``MaxNorm(c=torch.tensor([...]))``, one radius per
    member (:meth:`for_members`).
    """

    c: Strength = 3.0
    dim: int = -1
    include_biases: bool = False
    exclude: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    members_axis: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.c, Tensor):
            check(bool((self.c > 0).all()), "c", self.c, "a positive radius")
        else:
            check(self.c > 0, "c", self.c, "a positive radius")
        object.__setattr__(self, "exclude", tuple(self.exclude))
        if self.only is not None:
            object.__setattr__(self, "only", tuple(self.only))

    def params(self, named_params: NamedParams) -> list[tuple[str, Tensor]]:
        chosen = select(
            named_params,
            include_biases=self.include_biases,
            exclude=self.exclude,
            members_axis=self.members_axis,
        )
        chosen = [(n, p) for n, p in chosen if p.ndim - int(self.members_axis) >= 2]
        if self.only is not None:
            only: Sequence[str] = self.only
            chosen = [(n, p) for n, p in chosen if n in only]
        return chosen

    def apply_after_step(self, named_params: NamedParams) -> None:
        """Project every chosen weight onto its ball (``params``: a module, dict or pairs)."""
        for _, w in self.params(named_params):
            max_norm_(w, self.c, dim=self.dim, members_axis=self.members_axis)

    def after_step(self, params: NamedParams, lr: Strength | None = None) -> None:
        """The protocol's hook after ``optimizer.step()`` (``lr`` is not used)."""
        self.apply_after_step(params)

    def for_members(self, n: int) -> MaxNorm:
        """This constraint on stacked ``(members, ...)`` weights of ``n`` members
        (``members_axis=True``; a tensor ``c`` has one radius per member or one for all)."""
        if isinstance(self.c, Tensor):
            check(
                self.c.numel() == 1 or tuple(self.c.shape) == (n,),
                "c",
                tuple(self.c.shape),
                f"a float or a tensor of shape ({n},), one radius per member",
            )
        return self if self.members_axis else replace(self, members_axis=True)
