"""Saliencies and Optimal Brain Surgeon's algebra: magnitude, OBD (LeCun, Denker & Solla 1990),
OBS (Hassibi & Stork 1993) saliency, update, inverse-Hessian downdate and the OBS loop."""

from __future__ import annotations

import torch
from torch import Tensor

from smithing._registry import check

__all__ = [
    "magnitude_saliency",
    "obd_saliency",
    "obs_downdate",
    "obs_inverse",
    "obs_prune",
    "obs_saliency",
    "obs_update",
]


# --------------------------------------------------------------------------- saliencies
def magnitude_saliency(w: Tensor) -> Tensor:
    r"""``|w|``: the magnitude criterion, $s_k = \lvert w_k \rvert$ for each weight $w_k$ of
    ``w`` (prune the smallest).

    Args:
        w: the weights.

    Returns:
        The saliencies, shaped like ``w``.

    References:
        Han, Pool, Tran & Dally, "Learning both weights and connections for efficient neural
        networks", NIPS 2015, Sec. 3.
    """
    return w.abs()


def obd_saliency(w: Tensor, h_diag: Tensor) -> Tensor:
    r"""``s_k = 1/2 h_kk w_k^2`` (LeCun et al. 1990, recipe step 4).

    $$
    s_k = \tfrac12\, h_{kk}\, w_k^2
    $$

    with $w_k$ an entry of ``w`` and $h_{kk} = \partial^2 E / \partial w_k^2$ the matching
    entry of ``h_diag``: the loss increase from setting $w_k = 0$ predicted by the diagonal,
    second-order Taylor expansion of the loss $E$ at a minimum (gradient term dropped).

    Args:
        w: the weights.
        h_diag: the Hessian diagonal, shaped like ``w`` (:func:`hessian_diagonal`,
            :func:`fisher_diagonal`).

    Returns:
        The saliencies, shaped like ``w``.

    References:
        LeCun, Denker & Solla, "Optimal Brain Damage", NIPS 2, 1990, Sec. 3 (the saliency
        $s_k = h_{kk} u_k^2 / 2$ of the recipe's step 4).

    Examples:
        >>> import torch
        >>> obd_saliency(torch.tensor([1.0, -2.0]), torch.tensor([4.0, 0.5]))
        tensor([2., 1.])
    """
    return 0.5 * h_diag * w.square()


def obs_saliency(w: Tensor, h_inv: Tensor) -> Tensor:
    r"""``L_q = w_q^2 / (2 [H^-1]_qq)`` for flat ``w`` ``(n,)`` (Hassibi & Stork 1993, eq. 5).

    $$
    L_q = \frac{w_q^2}{2\, [H^{-1}]_{qq}}
    $$

    with $w_q$ entry $q$ of ``w`` and $H^{-1}$ the inverse Hessian ``h_inv``: the smallest
    loss increase, to second order, of any change of all the weights that sets $w_q = 0$.
    Entries with $[H^{-1}]_{qq} \le 0$ (already removed by :func:`obs_downdate`) get
    ``inf``.

    Args:
        w: the ``(n,)`` flat weights.
        h_inv: the ``(n, n)`` inverse Hessian.

    Returns:
        The ``(n,)`` saliencies.

    References:
        Hassibi & Stork, "Second order derivatives for network pruning: Optimal Brain
        Surgeon", NIPS 5, 1993, eq. 5.
    """
    d = torch.diagonal(h_inv)  # (n,)
    sal = w.square() / (2 * d)
    return torch.where(d > 0, sal, torch.full_like(sal, float("inf")))


def obs_update(w: Tensor, h_inv: Tensor, q: int) -> Tensor:
    r"""``dw = -(w_q / [H^-1]_qq) H^-1 e_q`` (Hassibi & Stork 1993, eq. 5), shape ``(n,)``.

    $$
    \delta w = -\frac{w_q}{[H^{-1}]_{qq}}\, H^{-1} e_q
    $$

    with $w_q$ entry $q$ of ``w``, $H^{-1}$ = ``h_inv`` and $e_q$ the unit vector of weight
    $q$ = ``q``: the change of all weights that removes $w_q$ ($w_q + \delta w_q = 0$) at the
    least second-order loss increase $L_q$ (:func:`obs_saliency`).

    Args:
        w: the ``(n,)`` flat weights.
        h_inv: the ``(n, n)`` inverse Hessian.
        q: the index of the weight removed.

    Returns:
        $\delta w$, shape ``(n,)``.

    References:
        Hassibi & Stork, "Second order derivatives for network pruning: Optimal Brain
        Surgeon", NIPS 5, 1993, eq. 5.
    """
    return -(w[q] / h_inv[q, q]) * h_inv[:, q]


def obs_downdate(h_inv: Tensor, q: int) -> Tensor:
    r"""``H^-1 - H^-1 e_q e_q^T H^-1 / [H^-1]_qq``: the inverse Hessian with weight ``q`` fixed.

    $$
    H^{-1} \leftarrow H^{-1} - \frac{H^{-1} e_q e_q^\top H^{-1}}{[H^{-1}]_{qq}}
    $$

    with $H^{-1}$ = ``h_inv`` and $e_q$ the unit vector of weight $q$ = ``q``. Restricted to
    the other weights it equals the inverse of $H$ without row and column $q$ (the inverse of a
    Schur complement); row and column $q$ become 0, so later updates never move $w_q$.

    Args:
        h_inv: the ``(n, n)`` inverse Hessian.
        q: the index of the weight removed.

    Returns:
        The ``(n, n)`` downdated inverse (a new tensor).

    Note:
        Hassibi & Stork recompute or rebuild $H^{-1}$ after each removal (their recursion,
        eq. 8, builds it from outer products); this rank-one downdate is the exact inverse of
        the reduced Hessian in one step.
    """
    col = h_inv[:, q]  # (n,)
    return h_inv - torch.outer(col, h_inv[q, :]) / h_inv[q, q]


def obs_inverse(h: Tensor, keep: Tensor | None = None, *, damping: float = 0.0) -> Tensor:
    r"""``(H_KK + damping I)^-1`` over the kept weights ``K``, embedded in ``(n, n)`` zeros.

    $$
    [H^{-1}]_{ij} = \begin{cases} \left[(H_{KK} + \alpha I)^{-1}\right]_{ij} & i, j \in K
    \\ 0 & \text{otherwise} \end{cases}
    $$

    with $K$ the kept weights (``keep``), $H_{KK}$ the block of ``h`` on them and $\alpha$ =
    ``damping``.

    ``h`` is the ``(n, n)`` Hessian (or Gauss-Newton matrix) of all ``n`` weights, ``keep`` a
    bool ``(n,)`` (default: all kept). Entry ``[i, j]`` of the result is ``[(H_KK + damping
    I)^-1]_ij`` for kept ``i, j`` and 0 when either is removed. In exact arithmetic this is what
    :func:`obs_downdate` of the full inverse for every removed weight gives (the inverse of the
    submatrix without their rows and columns), but it needs only the kept block to be
    invertible and accumulates no rounding from the downdates. The zero rows and columns give a
    removed weight ``[H^-1]_qq = 0``: :func:`obs_saliency` ``inf`` (never chosen) and
    :func:`obs_update` 0 (never moved). ``damping`` is added to the kept block's diagonal
    (Hassibi & Stork's ``H_0 = alpha I`` start of the inverse recursion plays this role).
    Pass the result to :func:`obs_prune` with ``downdated=True``.

    Args:
        h: the ``(n, n)`` Hessian or Gauss-Newton matrix of all weights.
        keep: bool ``(n,)``, the kept weights (default: all).
        damping: $\alpha \ge 0$ added to the kept block's diagonal.

    Returns:
        The ``(n, n)`` inverse, zero in the removed weights' rows and columns.

    References:
        Hassibi & Stork, "Second order derivatives for network pruning: Optimal Brain
        Surgeon", NIPS 5, 1993, Sec. 3 ($H_0 = \alpha I$).
    """
    check(
        h.dim() == 2 and h.shape[0] == h.shape[1],
        "h",
        tuple(h.shape),
        "a square (n, n) matrix",
    )
    check(damping >= 0, "damping", damping, "a non-negative number")
    if keep is None:
        keep = torch.ones(h.shape[0], dtype=torch.bool, device=h.device)
    check(
        keep.dtype == torch.bool and tuple(keep.shape) == (h.shape[0],),
        "keep",
        f"{keep.dtype} {tuple(keep.shape)}",
        f"a bool ({h.shape[0]},) tensor",
    )
    idx = torch.nonzero(keep).flatten().to(h.device)  # (m,) the kept weights
    sub = h[idx][:, idx]  # (m, m) H_KK
    if damping:
        sub = sub + damping * torch.eye(len(idx), dtype=h.dtype, device=h.device)  # + alpha I
    h_inv = torch.zeros_like(h)
    h_inv[idx[:, None], idx[None, :]] = torch.linalg.inv(sub)  # (H_KK + alpha I)^-1
    return h_inv


def obs_prune(
    w: Tensor,
    h_inv: Tensor,
    k: int,
    *,
    removed: Tensor | None = None,
    downdated: bool = False,
) -> tuple[Tensor, Tensor, list[tuple[int, float]], Tensor]:
    r"""Remove ``k`` weights from flat ``w`` one at a time by OBS (Hassibi & Stork 1993).

    $$
    q = \operatorname*{arg\,min}_{q \notin R} \frac{w_q^2}{2 [H^{-1}]_{qq}}, \qquad
    w \leftarrow w - \frac{w_q}{[H^{-1}]_{qq}} H^{-1} e_q, \qquad R \leftarrow R \cup \{q\}
    $$

    repeated ``k`` times, with $R$ the removed weights, $H^{-1}$ the inverse Hessian of the
    remaining weights (downdated after each removal) and $e_q$ the unit vector of weight $q$.

    Each removal picks ``q = argmin_q L_q``, ``L_q = w_q^2 / (2 [H^-1]_qq)`` over the remaining
    weights, moves all weights by ``dw = -(w_q / [H^-1]_qq) H^-1 e_q`` (eq. 5; ``w_q + dw_q =
    0``), sets the removed weights to exactly 0 and downdates ``H^-1`` to the remaining weights
    (:func:`obs_downdate`). For a quadratic loss the result is the exact minimum with the
    removed weights at 0, and the ``L_q`` add up to the exact loss increase.

    Args:
        w: the ``(n,)`` flat weights (float64 recommended).
        h_inv: the ``(n, n)`` inverse Hessian: of all ``n`` weights (``downdated=False``) or
            already of the kept ones, with zero rows and columns for the removed weights
            (``downdated=True``: what :func:`obs_inverse` or a previous call returns).
        k: how many more weights to remove.
        removed: bool ``(n,)`` marking weights already pruned (default none): they are set to 0
            and, unless ``downdated``, ``h_inv`` is downdated for each first.
        downdated: whether ``h_inv`` is already the kept weights' inverse (see ``h_inv``). A
            removal can thus be continued call after call: ``w, removed, _, h_inv =
            obs_prune(w, h_inv, k, removed=removed, downdated=True)``.

    Returns:
        ``(w, removed, [(q, L_q), ...], h_inv)``: the updated weights, the removal mask, the
        removals in order with their saliencies at removal time, and the downdated inverse.
        The inputs are not modified.

    References:
        Hassibi & Stork, "Second order derivatives for network pruning: Optimal Brain
        Surgeon", NIPS 5, 1993, eq. 5 and Sec. 3 (the OBS procedure).
    """
    w, h_inv = w.clone(), h_inv.clone()
    removed = torch.zeros_like(w, dtype=torch.bool) if removed is None else removed.clone()
    if not downdated:
        for q in torch.nonzero(removed).flatten().tolist():
            h_inv = obs_downdate(h_inv, q)
    w = w.masked_fill(removed, 0.0)
    check(0 <= k <= int((~removed).sum()), "k", k, f"at most the {int((~removed).sum())} remaining")
    history = []
    for _ in range(k):
        sal = obs_saliency(w, h_inv).masked_fill(removed, float("inf"))  # (n,)
        q = int(torch.argmin(sal))
        history.append((q, float(sal[q])))
        w = w + obs_update(w, h_inv, q)  # w + dw, eq. 5
        removed[q] = True
        w = w.masked_fill(removed, 0.0)  # exact zeros (w_q + dw_q = 0 up to rounding)
        h_inv = obs_downdate(h_inv, q)  # the inverse Hessian of the remaining weights
    return w, removed, history, h_inv
