"""Max-norm constraint on each hidden unit's incoming weight vector.

Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov, "Dropout: A Simple Way to Prevent
Neural Networks from Overfitting", JMLR 15, 2014, Sec. 5.1: after every update, the incoming
weight vector ``w_j`` of every hidden unit ``j`` is projected onto the ball ``||w_j||_2 <= c``::

    w_j <- w_j * min(1, c / ||w_j||_2)

**Which axis.** Unit ``j``'s incoming vector is *everything* unit ``j`` receives: row ``j`` of an
``nn.Linear.weight`` ``(out_features, in_features)``, and the whole ``(in_channels, kh, kw)``
block of output channel ``j`` of an ``nn.Conv2d.weight`` ``(out, in, kh, kw)`` (the paper's
convolutional networks constrain each filter as one vector). The argument ``dim`` names the
dimension(s) the norm **reduces over**; the default ``None`` is every dimension but the first
(``in`` for Linear, ``(in, kh, kw)`` for Conv2d). A choice must reduce over every dimension but
one, the one that indexes the units (e.g. ``dim=0`` for a matrix stored ``(in, out)``); anything
else (a kernel row ``dim=-1`` of a convolution, the whole tensor) is not a per-unit constraint and
raises ``ValueError``. This is a recurring bug because the two usual references disagree:

* ``torch.renorm(w, p=2, dim=0, maxnorm=c)`` names the dimension that **indexes** the sub-tensors
  (dim 0 = one sub-tensor per output unit), i.e. the opposite of ours: our default is
  ``torch.renorm(..., dim=0)`` for every layout. It also scales by ``c / (norm + 1e-7)``; we scale
  by exactly ``c / norm``.
* Keras' ``MaxNorm(axis=0)`` reduces over ``axis=0``, like ours, but Keras' ``Dense`` kernel is
  ``(in, out)``, the transpose of PyTorch's; its ``axis=0`` is our ``dim=1`` (and its ``Conv2D``
  kernel ``(kh, kw, in, out)`` needs ``axis=[0, 1, 2]``, our default).

Ensembles: with ``members_axis=True`` the weight is ``(members, out, ...)``, ``dim`` still indexes
the per-member weight (so for a Linear ``dim=1`` and ``dim=-1`` both mean ``in``), and ``c`` may be
a float or a ``(members,)`` tensor, one radius per member.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from smithing._registry import check
from smithing.regularize.penalties import NamedParams, Strength, per_member, select

__all__ = ["MaxNorm", "max_norm_", "unit_norms"]


Dims = int | tuple[int, ...] | None


def _is_int(d: object) -> bool:
    return isinstance(d, int) and not isinstance(d, bool)


def _check_dims_type(dim: object) -> None:
    ok = dim is None or _is_int(dim)
    if isinstance(dim, (tuple, list)):
        ok = len(dim) > 0 and all(_is_int(d) for d in dim)
    check(ok, "dim", dim, "None, an int or a tuple of ints (the dimensions the norm reduces over)")


def _reduce_dims(w: Tensor, dim: Dims, members_axis: bool) -> int | tuple[int, ...]:
    """The dimensions of ``w`` the norm reduces over (an int when there is one)."""
    _check_dims_type(dim)
    ndim = w.ndim - int(members_axis)  # per member
    check(ndim >= 2, "weight", tuple(w.shape), "a weight with >= 2 dims per member")
    if dim is None:
        dims = tuple(range(1, ndim))  # all but the units' axis 0: each unit's incoming vector
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)  # checked: an int is no bool
    shape = tuple(w.shape[int(members_axis) :])
    in_range = all(-ndim <= d < ndim for d in dims)
    normalized = sorted({d % ndim for d in dims}) if in_range else []
    check(
        in_range and len(normalized) == len(dims) == ndim - 1,
        "dim",
        dim if dim is None or isinstance(dim, int) else tuple(dim),
        f"the dimensions the norm reduces over, every dimension but one (the one indexing the "
        f"units) of the per-member weight of shape {shape}; None: all but the first, each "
        "unit's whole incoming vector",
    )
    out = tuple(d + int(members_axis) for d in normalized)
    return out[0] if len(out) == 1 else out


def unit_norms(w: Tensor, *, dim: Dims = None, members_axis: bool = False) -> Tensor:
    """L2 norms of the incoming vectors: ``||w||_2`` reduced over ``dim`` (kept as size 1)."""
    d = _reduce_dims(w, dim, members_axis)
    return torch.linalg.vector_norm(w, dim=d, keepdim=True)  # (out, 1, ...) per member


@torch.no_grad()
def max_norm_(w: Tensor, c: Strength, *, dim: Dims = None, members_axis: bool = False) -> Tensor:
    r"""In place ``w_j <- w_j min(1, c / ||w_j||_2)`` with the norm over ``dim``; returns ``w``.

    $$
    w_j \leftarrow w_j \min\left(1, \frac{c}{\lVert w_j \rVert_2}\right)
    $$

    where $w_j$ is unit $j$'s incoming weight vector (the slice of ``w`` the norm reduces over
    ``dim``) and $c$ is the radius ``c``: the Euclidean projection onto the ball
    $\lVert w_j \rVert_2 \le c$; a vector already inside (or zero) is unchanged.

    Args:
        w: weight, ``(out, in)`` for ``nn.Linear``, ``(out, in, kh, kw)`` for ``nn.Conv2d``, or
            either with a leading members axis (``members_axis``).
        c: the radius (> 0), a float or ``(members,)``.
        dim: the dimension(s) the norm reduces over, per member: every dimension but the one
            indexing the units (module docstring); None (default): all but the first, each
            output unit's (or channel's) whole incoming vector.
        members_axis: ``w`` has a leading members axis (``c`` may be one radius per member).

    Returns:
        ``w``.

    Note:
        ``torch.renorm(w, 2, 0, c)`` is the same projection with ``dim`` naming the other axis
        and a ``1e-7`` added to the norm; here the factor is exactly $c / \lVert w_j \rVert_2$
        (module docstring).

    References:
        Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov, "Dropout: A Simple Way to
        Prevent Neural Networks from Overfitting", JMLR 15, 2014, Sec. 5.1; Srebro, Rennie &
        Jaakkola, "Maximum-margin matrix factorization", NIPS 2005.

    Examples:
        >>> import torch
        >>> max_norm_(torch.tensor([[3.0, 4.0], [0.3, 0.4]]), c=1.0)  # rows: norms 5 and 0.5
        tensor([[0.6000, 0.8000],
                [0.3000, 0.4000]])
    """
    c_t = per_member(c, w, members_axis, "c")
    check(bool((c_t > 0).all()), "c", c, "a positive radius")
    norms = unit_norms(w, dim=dim, members_axis=members_axis)
    scale = (c_t / norms).clamp_(max=1.0)  # min(1, c/||w_j||), Srivastava 2014 Sec. 5.1
    return w.mul_(scale)  # zero rows: c/0 = inf -> 1, unchanged


@dataclass(frozen=True)
class MaxNorm:
    r"""Max-norm constraint on a model's weight matrices, applied after every optimizer step.

    $$
    w_j \leftarrow w_j \min\left(1, \frac{c}{\lVert w_j \rVert_2}\right)
    \quad \text{after every step, for every unit } j
    $$

    with $w_j$ unit $j$'s incoming weight vector and $c$ = ``c`` (:func:`max_norm_`).

    Args:
        c: the radius $c > 0$; a float, or a ``(members,)`` tensor with ``members_axis``.
        dim: the dimension(s) the norm reduces over (:func:`max_norm_`).
        include_biases: constrain 1-D parameters (biases) too.
        exclude: names or patterns of parameters left alone (as :class:`Penalty`'s).
        only: constrain only these parameter names (``None``: every weight matrix).
        members_axis: parameters carry a leading members axis.

    References:
        Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
        JMLR 15, 2014, Sec. 5.1.

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
    dim: Dims = None
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
        _check_dims_type(self.dim)
        if isinstance(self.dim, list):
            object.__setattr__(self, "dim", tuple(self.dim))

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
