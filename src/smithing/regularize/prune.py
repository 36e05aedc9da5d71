"""Pruning: magnitude, Optimal Brain Damage, Optimal Brain Surgeon; masks that persist.

Every method ranks weights by a *saliency* (the estimated increase of the training loss when
the weight is set to 0) and removes the lowest ``fraction``:

* ``"magnitude"``: saliency ``|w_k|``.
* ``"obd"`` — LeCun, Denker & Solla, "Optimal Brain Damage", NIPS 2 (1990): a second-order
  Taylor expansion around a minimum with a diagonal Hessian, ``s_k = 1/2 h_kk w_k^2`` (the
  paper's recipe, step 4);
  the other weights are not changed (the paper retrains afterwards). ``h_kk`` from
  :func:`hessian_diagonal`: ``"exact"`` (``torch.func.hessian``; small layers), ``"hutchinson"``
  (``E[z * (H z)]``, ``z`` Rademacher; Bekas, Kokiopoulou & Saad 2007), ``"fisher"`` (the
  Gauss-Newton diagonal of a softmax cross-entropy estimated with labels sampled from the model:
  ``E_y[g_y^2]``; it replaces the paper's own Levenberg-Marquardt backward pass, which drops the
  same second-derivative terms) or ``"empirical_fisher"`` (the data's labels).
* ``"obs"`` — Hassibi & Stork, "Second order derivatives for network pruning: Optimal Brain
  Surgeon", NIPS 5 (1993): with the full inverse Hessian ``H^-1``, weight ``q`` has saliency
  ``L_q = w_q^2 / (2 [H^-1]_qq)`` (eq. 5) and removing it with the compensating update
  ``dw = -(w_q / [H^-1]_qq) H^-1 e_q`` (eq. 5) sets ``w_q`` to exactly 0 and, for a quadratic
  loss, raises it by exactly ``L_q``. Weights are removed one at a time; after each removal
  ``H^-1`` is downdated to the inverse Hessian of the remaining weights,
  ``H^-1 <- H^-1 - H^-1 e_q e_q^T H^-1 / [H^-1]_qq`` (the inverse of the submatrix without
  row/column ``q``: a rank-one Woodbury downdate, exact, instead of re-inverting). Weights
  already pruned by an earlier mask are left out by inverting only the kept block
  (:func:`obs_inverse`; it needs only that block to be invertible). ``H`` is
  ``hessian="exact"`` (default; the Hessian of the loss by ``torch.func.hessian``) or
  ``hessian="gauss_newton"`` (:func:`gauss_newton_matrix`: the outer-product matrix
  ``G = (1/N) sum_i J_i^T (diag q_i - q_i q_i^T) J_i`` of the mean softmax cross-entropy, the
  paper's Sec. 3 approximation: positive semi-definite, it drops the Hessian's
  ``sum_c (q_c - y_c) d^2 z_c / dw^2`` term). Either is inverted as
  ``H + damping I`` in float64 (the paper's ``H_0^-1 = alpha^-1 I`` start plays the damping's
  role), so OBS is limited to ``max_params`` weights. Departure: the paper builds ``H^-1`` by its
  recursion over training patterns (rank-one Sherman-Morrison updates from ``H_0``); we form
  ``G`` (or the exact Hessian) and invert it once, which for ``G`` reaches the same inverse
  directly. The exact Hessian of a trained ReLU network is usually indefinite; OBS then refuses
  it (``ValueError``) instead of returning negative or NaN saliencies: raise ``damping`` or use
  ``hessian="gauss_newton"``.

Masks (:class:`PruneMask`, ``True`` = kept) live in a dict ``name -> bool tensor``; apply them
after every optimizer step (``mask.apply_(model)``, ``mask.attach(optimizer, model)`` once, or
``fit(..., regularizer=mask)``: a mask is a regularizer of the trainers' protocol) so retraining
keeps the pruned weights at 0. ``fit_ensemble(..., regularizer=mask)`` applies it to the stacked
parameters: a mask of one model's shape prunes every member alike, a ``(members, ...)`` mask
prunes each member its own way. Saliencies and :func:`prune` act on one model at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.func import functional_call

from smithing._registry import Registry, check
from smithing.regularize.penalties import select

Objective = Callable[[dict[str, Tensor]], Tensor]

__all__ = [
    "HESSIANS",
    "HESSIAN_DIAGONALS",
    "OBS_HESSIANS",
    "PRUNE_METHODS",
    "PruneMask",
    "PruneReport",
    "fisher_diagonal",
    "full_hessian",
    "gauss_newton_matrix",
    "hessian_diagonal",
    "make_objective",
    "magnitude_saliency",
    "obd_saliency",
    "obs_downdate",
    "obs_inverse",
    "obs_prune",
    "obs_saliency",
    "obs_update",
    "prune",
]


# --------------------------------------------------------------------------- masks
class PruneMask:
    """Boolean keep-masks by parameter name (``True`` = kept, ``False`` = pruned).

    A regularizer of the trainers' protocol (:mod:`smithing.regularize.protocol`): its
    :meth:`before_step` is :meth:`apply_grad_` (the pruned weights' gradients are zeroed before
    every optimizer step, so no optimizer state, such as a momentum buffer or Adam's moments,
    builds up where a weight is pruned) and its :meth:`after_step` is :meth:`apply_`
    (``w <- m * w`` after every optimizer step). The kept weights train exactly as without the
    first hook: the optimizers update each element on its own.
    """

    def __init__(self, masks: dict[str, Tensor]) -> None:
        self.masks = {name: m.detach().to(torch.bool).clone() for name, m in masks.items()}

    @classmethod
    def ones_like(cls, named_params: Iterable[tuple[str, Tensor]]) -> PruneMask:
        return cls({n: torch.ones_like(p, dtype=torch.bool) for n, p in named_params})

    def _params(self, model: nn.Module | dict[str, Tensor]) -> dict[str, Tensor]:
        named = model if isinstance(model, dict) else dict(model.named_parameters())
        missing = [n for n in self.masks if n not in named]
        check(not missing, "model", missing, "parameters named as in the mask")
        return named

    @torch.no_grad()
    def apply_(self, model: nn.Module | dict[str, Tensor]) -> None:
        """Zero the pruned weights in place (call after every optimizer step)."""
        named = self._params(model)
        for name, m in self.masks.items():
            named[name].masked_fill_(~m.to(named[name].device), 0)  # w <- m * w

    @torch.no_grad()
    def apply_grad_(self, model: nn.Module | dict[str, Tensor]) -> None:
        """Zero the gradients of pruned weights (keeps momentum buffers from growing there)."""
        named = self._params(model)
        for name, m in self.masks.items():
            g = named[name].grad
            if g is not None:
                g.masked_fill_(~m.to(g.device), 0)

    def before_step(self, params: nn.Module | dict[str, Tensor], lr: object = None) -> None:
        """The protocol's hook before ``optimizer.step()``: :meth:`apply_grad_` (``lr``
        unused)."""
        self.apply_grad_(params)

    def after_step(self, params: nn.Module | dict[str, Tensor], lr: object = None) -> None:
        """The protocol's hook after ``optimizer.step()``: :meth:`apply_` (``lr`` unused)."""
        self.apply_(params)

    def for_members(self, n: int) -> PruneMask:
        """The same mask on stacked ``(members, ...)`` parameters: it broadcasts over the members
        axis (a ``(members, ...)`` mask gives each member its own)."""
        return self

    def attach(self, optimizer: torch.optim.Optimizer, model: nn.Module):
        """Apply the mask after every ``optimizer.step()``; returns the removable hook handle."""
        return optimizer.register_step_post_hook(lambda *_: self.apply_(model))

    def n_pruned(self) -> int:
        return int(sum((~m).sum() for m in self.masks.values()))

    def n_total(self) -> int:
        return int(sum(m.numel() for m in self.masks.values()))

    def sparsity(self) -> float:
        """Fraction of masked entries that are pruned."""
        return self.n_pruned() / max(1, self.n_total())

    def per_param(self) -> dict[str, float]:
        return {n: float((~m).float().mean()) for n, m in self.masks.items()}

    def state_dict(self) -> dict[str, Tensor]:
        return {n: m.clone() for n, m in self.masks.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`state_dict` returned (the trainers' checkpoints call it)."""
        self.masks = {n: m.detach().to(torch.bool).clone() for n, m in state.items()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> PruneMask:
        return cls(state)


@dataclass
class PruneReport:
    """What :func:`prune` did."""

    method: str
    fraction: float
    n_total: int  # weights subject to pruning
    n_pruned: int  # pruned in total (including earlier masks)
    per_param: dict[str, float]  # fraction pruned per parameter
    saliency: dict[str, Tensor]  # saliencies before this call's pruning (OBS: initial L_q)
    predicted_increase: float | None  # OBD: sum of removed s_k; OBS: sum of sequential L_q
    loss_before: float | None = None
    loss_after: float | None = None
    removed_order: list[tuple[str, int]] = field(default_factory=list)  # OBS: (name, flat index)


# --------------------------------------------------------------------------- flat helpers
def _flatten(params: dict[str, Tensor]) -> Tensor:
    return torch.cat([p.reshape(-1) for p in params.values()])  # (n,)


def _unflatten(flat: Tensor, like: dict[str, Tensor]) -> dict[str, Tensor]:
    out, start = {}, 0
    for name, p in like.items():
        out[name] = flat[start : start + p.numel()].reshape(p.shape)
        start += p.numel()
    return out


def make_objective(
    model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, y: Tensor
) -> Objective:
    """``params -> loss_fn(model(x; params), y)`` via ``torch.func.functional_call``.

    ``params`` may name a subset of the model's parameters; the rest are the model's own.
    """

    def objective(params: dict[str, Tensor]) -> Tensor:
        return loss_fn(functional_call(model, params, (x,)), y)

    return objective


def full_hessian(objective: Objective, params: dict[str, Tensor]) -> Tensor:
    """The ``(n, n)`` Hessian of ``objective`` over the concatenated flattened ``params``."""
    like = {n: p.detach() for n, p in params.items()}
    flat = _flatten(like)

    def f(v: Tensor) -> Tensor:
        return objective(_unflatten(v, like))

    # torch.func differentiates regardless of grad mode; no_grad keeps the result off the
    # autograd graph (the objective also reads trainable biases: OBS's many downdates would
    # otherwise keep that graph alive and grow memory without bound)
    with torch.no_grad():
        return torch.func.hessian(f)(flat)  # (n, n)


# --------------------------------------------------------------------------- Hessian diagonal
HESSIAN_DIAGONALS: Registry[Callable[..., dict[str, Tensor]]] = Registry("Hessian diagonal")


@HESSIAN_DIAGONALS.register("exact")
def _diag_exact(objective: Objective, params: dict[str, Tensor], **_) -> dict[str, Tensor]:
    """diag of the exact Hessian (torch.func.hessian; n^2 memory)."""
    return _unflatten(torch.diagonal(full_hessian(objective, params)), params)


@HESSIAN_DIAGONALS.register("hutchinson")
def _diag_hutchinson(
    objective: Objective,
    params: dict[str, Tensor],
    *,
    samples: int = 100,
    generator: torch.Generator | None = None,
    **_,
) -> dict[str, Tensor]:
    """Hutchinson estimate E[z * (H z)], z Rademacher (unbiased; Hessian-vector products)."""
    like = {n: p.detach() for n, p in params.items()}
    flat = _flatten(like).requires_grad_(True)
    (g,) = torch.autograd.grad(objective(_unflatten(flat, like)), flat, create_graph=True)
    total = torch.zeros_like(flat)
    for s in range(samples):
        z = torch.randint(0, 2, flat.shape, generator=generator).to(flat) * 2 - 1  # Rademacher
        (hz,) = torch.autograd.grad(g, flat, z, retain_graph=s < samples - 1)  # H z
        total += z * hz  # z * (H z)
    return _unflatten((total / samples).detach(), like)


def fisher_diagonal(
    model: nn.Module,
    names: Sequence[str],
    x: Tensor,
    y: Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
    chunk: int = 256,
) -> dict[str, Tensor]:
    """``mean_i g_i^2`` with ``g_i = d(-log softmax(model(x_i))_{y_i}) / dw`` (per example).

    With ``y=None`` the labels are sampled from the model's own softmax: an unbiased estimate of
    the diagonal of the Gauss-Newton matrix ``J^T (diag(q) - q q^T) J`` of the mean cross-entropy
    (the Fisher); with the data's ``y`` it is the empirical Fisher. Assumes ``model`` outputs
    logits and the loss is the mean cross-entropy. The model runs in eval mode.
    """
    was_training = model.training
    model.eval()
    try:
        base = {n: p.detach() for n, p in model.named_parameters()}
        sel = {n: base[n] for n in names}
        if y is None:
            with torch.no_grad():
                probs = torch.softmax(model(x), dim=-1)  # (batch, classes)
            y = torch.multinomial(probs.cpu().double(), 1, generator=generator)[:, 0]
            y = y.to(x.device)

        def nll(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
            out = functional_call(model, {**base, **p}, (xi.unsqueeze(0),))  # (1, classes)
            return nn.functional.cross_entropy(out, yi.unsqueeze(0))  # -log softmax(out)_yi

        per_example = torch.func.vmap(torch.func.grad(nll), in_dims=(None, 0, 0))
        total = {n: torch.zeros_like(p) for n, p in sel.items()}
        for lo in range(0, x.shape[0], chunk):
            grads = per_example(sel, x[lo : lo + chunk], y[lo : lo + chunk])  # (c, *shape)
            for n in total:
                total[n] += grads[n].square().sum(dim=0)  # sum_i g_i^2
        return {n: t / x.shape[0] for n, t in total.items()}
    finally:
        model.train(was_training)


def _gauss_newton(
    model: nn.Module, names: Sequence[str], x: Tensor, chunk: int | None, diagonal: bool
) -> Tensor:
    """``sum_i J_i^T (diag q_i - q_i q_i^T) J_i / N`` (``(n, n)``) or its diagonal (``(n,)``)."""
    all_params = dict(model.named_parameters())
    unknown = [n for n in names if n not in all_params]
    check(not unknown, "names", unknown, f"parameter names of the model: {list(all_params)}")
    check(len(names) > 0, "names", list(names), "at least one parameter")
    check(chunk is None or chunk >= 1, "chunk", chunk, "None or a positive number of examples")
    was_training = model.training
    model.eval()
    try:
        base = {n: p.detach() for n, p in all_params.items()}
        sel = {n: base[n] for n in names}

        def logits(p: dict[str, Tensor], xi: Tensor) -> Tensor:
            return functional_call(model, {**base, **p}, (xi.unsqueeze(0),))[0]  # (C,)

        per_example = torch.func.vmap(torch.func.jacrev(logits), in_dims=(None, 0))
        n_ex = x.shape[0]
        step = n_ex if chunk is None else chunk
        total: Tensor | None = None
        with torch.no_grad():
            for lo in range(0, n_ex, step):
                xc = x[lo : lo + step]
                jac = per_example(sel, xc)  # name -> (c, C, *shape)
                j = torch.cat([jac[n].reshape(xc.shape[0], -1, sel[n].numel()) for n in names], -1)
                j = j.double()  # J_i: (c, C, n)
                q = torch.softmax(model(xc).double(), dim=-1)  # q_i: (c, C)
                a = j * q.sqrt().unsqueeze(-1)  # diag(q)^(1/2) J: (c, C, n)
                b = torch.einsum("nc,ncp->np", q, j)  # q^T J: (c, n)
                if diagonal:
                    part = a.square().sum((0, 1)) - b.square().sum(0)  # (n,)
                else:
                    part = torch.einsum("ncp,ncr->pr", a, a) - b.T @ b  # J^T(diag q - qq^T)J
                total = part if total is None else total + part
        assert total is not None
        return total / n_ex  # (1/N) sum_i
    finally:
        model.train(was_training)


def gauss_newton_matrix(
    model: nn.Module, names: Sequence[str], x: Tensor, *, chunk: int | None = None
) -> Tensor:
    """The Gauss-Newton (outer-product) matrix of the mean softmax cross-entropy.

    ``G = (1/N) sum_i J_i^T (diag(q_i) - q_i q_i^T) J_i`` over the weights ``names``, with
    ``J_i = d z_i / d w`` the ``(C, n)`` Jacobian of example ``i``'s logits ``z_i = model(x_i)``
    and ``q_i = softmax(z_i)``; ``diag(q) - q q^T`` is the Hessian of the cross-entropy in the
    logits, so ``G`` is the loss's Hessian without the term ``sum_c (q_c - y_c) d^2 z_c / dw^2``:
    symmetric positive semi-definite (unlike the exact Hessian of a trained ReLU network), equal to
    the Fisher information, and equal to the Hessian when the logits are linear in ``w``
    (softmax regression). It is the approximation Hassibi & Stork, "Second order derivatives for
    network pruning: Optimal Brain Surgeon", NIPS 5 (1993), Sec. 3, use for OBS; for their squared
    error the middle matrix is the identity, ``G = (1/N) sum_i J_i^T J_i``. The labels are not
    needed.

    Returns ``(n, n)`` float64 in the order of ``names`` (each parameter flattened row-major).
    The Jacobians are computed with ``torch.func.vmap(jacrev(...))`` in the model's dtype, then
    cast to float64; ``chunk`` examples at a time (default: all at once) bounds their memory,
    ``chunk * C * n`` numbers. The model runs in eval mode (restored afterwards) and must output
    logits ``(N, C)``. Not ensemble-aware (one model; no members axis).
    """
    return _gauss_newton(model, names, x, chunk, diagonal=False)


def hessian_diagonal(
    objective: Objective,
    params: dict[str, Tensor],
    method: str = "exact",
    *,
    samples: int = 100,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Diagonal of the Hessian of ``objective`` at ``params`` (``"exact"`` or ``"hutchinson"``).

    The Fisher estimates need the model and data: :func:`fisher_diagonal`.
    """
    check(method in ("exact", "hutchinson"), "method", method, "'exact' or 'hutchinson'")
    return HESSIAN_DIAGONALS.get(method)(objective, params, samples=samples, generator=generator)


# --------------------------------------------------------------------------- saliencies
def magnitude_saliency(w: Tensor) -> Tensor:
    """``|w|``."""
    return w.abs()


def obd_saliency(w: Tensor, h_diag: Tensor) -> Tensor:
    """``s_k = 1/2 h_kk w_k^2`` (LeCun et al. 1990, recipe step 4)."""
    return 0.5 * h_diag * w.square()


def obs_saliency(w: Tensor, h_inv: Tensor) -> Tensor:
    """``L_q = w_q^2 / (2 [H^-1]_qq)`` for flat ``w`` ``(n,)`` (Hassibi & Stork 1993, eq. 5).

    Entries with ``[H^-1]_qq <= 0`` (already removed by :func:`obs_downdate`) get ``inf``.
    """
    d = torch.diagonal(h_inv)  # (n,)
    sal = w.square() / (2 * d)
    return torch.where(d > 0, sal, torch.full_like(sal, float("inf")))


def obs_update(w: Tensor, h_inv: Tensor, q: int) -> Tensor:
    """``dw = -(w_q / [H^-1]_qq) H^-1 e_q`` (Hassibi & Stork 1993, eq. 5), shape ``(n,)``."""
    return -(w[q] / h_inv[q, q]) * h_inv[:, q]


def obs_downdate(h_inv: Tensor, q: int) -> Tensor:
    """``H^-1 - H^-1 e_q e_q^T H^-1 / [H^-1]_qq``: the inverse Hessian with weight ``q`` fixed.

    Restricted to the other weights it equals the inverse of ``H`` without row and column ``q``;
    row and column ``q`` become 0, so later updates never move ``w_q``.
    """
    col = h_inv[:, q]  # (n,)
    return h_inv - torch.outer(col, h_inv[q, :]) / h_inv[q, q]


def obs_inverse(h: Tensor, keep: Tensor | None = None, *, damping: float = 0.0) -> Tensor:
    """``(H_KK + damping I)^-1`` over the kept weights ``K``, embedded in an ``(n, n)`` zero matrix.

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
    """Remove ``k`` weights from flat ``w`` one at a time by OBS (Hassibi & Stork 1993).

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


# --------------------------------------------------------------------------- prune()
@dataclass
class _Context:
    model: nn.Module
    params: dict[str, Tensor]  # the prunable parameters (live)
    mask: PruneMask
    k_new: dict[str | None, int]  # None -> global count, else per parameter
    objective: Objective | None
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None
    data: tuple[Tensor, Tensor] | None
    hessian: str
    samples: int
    damping: float
    max_params: int
    generator: torch.Generator | None
    chunk: int | None  # examples per batch of per-example Jacobians / gradients


PRUNE_METHODS: Registry[Callable[[_Context], tuple[dict, float | None, list]]] = Registry(
    "pruning method"
)
#: the ``hessian=`` options of :func:`prune` (OBD: all; OBS: the full matrices only)
HESSIANS = ("exact", "hutchinson", "fisher", "empirical_fisher", "gauss_newton")
OBS_HESSIANS = ("exact", "gauss_newton")
_GN_CHUNK = 256  # examples per Jacobian batch in prune(): memory chunk * C * n


def _names_list(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _check_invertible(ctx: _Context, h: Tensor, keep: Tensor) -> None:
    """Refuse a damped Hessian whose block over the kept weights is not positive definite.

    OBS inverts ``H + damping I`` and downdates it to the kept weights, i.e. it needs the kept
    block to be positive definite; otherwise ``[H^-1]_qq`` can be negative, huge or NaN.
    """
    idx = torch.nonzero(keep).flatten()
    if len(idx) == 0:
        return
    sub = h[idx][:, idx]  # (m, m) float64
    if int(torch.linalg.cholesky_ex(sub).info) == 0:
        return
    lam = float(torch.linalg.eigvalsh(sub).min())
    mean_diag = float(torch.diagonal(sub).mean())
    if ctx.hessian == "exact" and lam < 0:
        raise ValueError(
            f"hessian='exact' is indefinite: the Hessian of the loss plus damping={ctx.damping} "
            f"* I has smallest eigenvalue {lam:.3g} (typical at a trained ReLU network), so OBS's "
            "saliencies w_q^2 / (2 [H^-1]_qq) would be negative or NaN; pass damping= larger "
            f"than {ctx.damping - lam:.3g} or hessian='gauss_newton' (positive semi-definite; "
            "needs data=(x, y) and a model that outputs logits)"
        )
    raise ValueError(
        f"hessian={ctx.hessian!r} plus damping={ctx.damping} * I is singular (smallest "
        f"eigenvalue {lam:.3g}, mean diagonal {mean_diag:.3g}; e.g. weights into units that are "
        "off on every example), so OBS cannot invert it; pass damping= > 0 (Hassibi & Stork's "
        "H_0 = alpha I; a small fraction of the mean diagonal)"
    )


def _choose(ctx: _Context, saliency: dict[str, Tensor]) -> None:
    """Prune the lowest-saliency kept weights (global or per parameter count in ``ctx.k_new``)."""
    groups = [list(ctx.params)] if None in ctx.k_new else [[n] for n in ctx.params]
    for names in groups:
        k = ctx.k_new[None] if None in ctx.k_new else ctx.k_new[names[0]]
        if k <= 0:
            continue
        sal = torch.cat(
            [
                saliency[n].reshape(-1).masked_fill(~ctx.mask.masks[n].reshape(-1), float("inf"))
                for n in names
            ]
        )  # (n,) pruned ones never chosen again
        idx = torch.topk(sal, k, largest=False).indices
        flat_keep = torch.cat([ctx.mask.masks[n].reshape(-1) for n in names])
        flat_keep[idx] = False
        for n, m in _unflatten(flat_keep, {n: ctx.mask.masks[n] for n in names}).items():
            ctx.mask.masks[n] = m.clone()


@PRUNE_METHODS.register("magnitude")
def _magnitude(ctx: _Context):
    """smallest |w|"""
    sal = {n: magnitude_saliency(p.detach()) for n, p in ctx.params.items()}
    _choose(ctx, sal)
    return sal, None, []


@PRUNE_METHODS.register("obd")
def _obd(ctx: _Context):
    """Optimal Brain Damage: s_k = 1/2 h_kk w_k^2 (LeCun, Denker & Solla 1990)"""
    if ctx.hessian == "gauss_newton":
        check(ctx.data is not None, "data", None, "(x, y) for hessian='gauss_newton'")
        names = list(ctx.params)
        diag = _gauss_newton(ctx.model, names, ctx.data[0], ctx.chunk, diagonal=True)  # (n,)
        h = _unflatten(diag, {n: ctx.params[n].detach() for n in names})
        h = {n: v.to(ctx.params[n].dtype) for n, v in h.items()}
    elif ctx.hessian in ("fisher", "empirical_fisher"):
        check(ctx.data is not None, "data", None, "(x, y) for a Fisher estimate")
        x, y = ctx.data
        h = fisher_diagonal(
            ctx.model,
            list(ctx.params),
            x,
            None if ctx.hessian == "fisher" else y,
            generator=ctx.generator,
            chunk=ctx.chunk if ctx.chunk is not None else x.shape[0],
        )
    else:
        check(ctx.objective is not None, "objective", None, "an objective or loss_fn + data")
        if ctx.hessian == "exact":
            n = sum(p.numel() for p in ctx.params.values())
            check(
                n <= ctx.max_params,
                "max_params",
                ctx.max_params,
                f">= the {n} weights for an exact Hessian (or hessian='hutchinson'/'fisher')",
            )
        h = HESSIAN_DIAGONALS.get(ctx.hessian)(
            ctx.objective, ctx.params, samples=ctx.samples, generator=ctx.generator
        )
    sal = {n: obd_saliency(p.detach(), h[n].detach()) for n, p in ctx.params.items()}
    before = {n: m.clone() for n, m in ctx.mask.masks.items()}
    _choose(ctx, sal)
    predicted = sum(float(sal[n][before[n] & ~ctx.mask.masks[n]].sum()) for n in sal)
    return sal, predicted, []


@PRUNE_METHODS.register("obs")
def _obs(ctx: _Context):
    """Optimal Brain Surgeon: L_q = w_q^2 / (2 [H^-1]_qq) with compensation (Hassibi & Stork)"""
    check(
        ctx.hessian in OBS_HESSIANS,
        "hessian",
        ctx.hessian,
        f"one of {_names_list(OBS_HESSIANS)} for OBS (it needs the full matrix)",
    )
    if ctx.hessian == "gauss_newton":
        check(ctx.data is not None, "data", None, "(x, y) for hessian='gauss_newton'")
    else:
        check(ctx.objective is not None, "objective", None, "an objective or loss_fn + data")
    groups = [list(ctx.params)] if None in ctx.k_new else [[n] for n in ctx.params]
    sal_all: dict[str, Tensor] = {}
    predicted, order = 0.0, []
    for names in groups:
        sub = {n: ctx.params[n] for n in names}
        n_w = sum(p.numel() for p in sub.values())
        check(
            n_w <= ctx.max_params,
            "max_params",
            ctx.max_params,
            f">= the {n_w} weights OBS must hold the inverse Hessian of",
        )
        k = ctx.k_new[None] if None in ctx.k_new else ctx.k_new[names[0]]
        if ctx.hessian == "gauss_newton":
            h = gauss_newton_matrix(ctx.model, names, ctx.data[0], chunk=ctx.chunk)  # (n, n)
        else:
            h = full_hessian(ctx.objective, sub).double()  # (n, n)
        h = h + ctx.damping * torch.eye(n_w, dtype=h.dtype, device=h.device)  # H + damping I
        w = _flatten({n: p.detach() for n, p in sub.items()}).double()
        removed = ~_flatten({n: ctx.mask.masks[n] for n in names}).to(w.device)
        _check_invertible(ctx, h, ~removed)
        h_inv = obs_inverse(h, ~removed)  # the kept block's inverse; removed rows/columns 0
        sal_all.update(_unflatten(obs_saliency(w, h_inv).to(ctx.params[names[0]].dtype), sub))
        w_new, removed, history, _ = obs_prune(w, h_inv, max(0, k), removed=removed, downdated=True)
        predicted += sum(s for _, s in history)
        offsets, start = {}, 0
        for n in names:
            offsets[n] = (start, start + sub[n].numel())
            start += sub[n].numel()
        for q, _ in history:
            name = next(n for n, (a, b) in offsets.items() if a <= q < b)
            order.append((name, q - offsets[name][0]))
        with torch.no_grad():
            for n, v in _unflatten(w_new, sub).items():
                ctx.params[n].copy_(v.to(ctx.params[n].dtype))
        for n, r in _unflatten(removed, sub).items():
            ctx.mask.masks[n] = ~r.to(ctx.mask.masks[n].device)
    return sal_all, predicted, order


def prune(
    model: nn.Module,
    method: str = "magnitude",
    fraction: float = 0.5,
    *,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    data: tuple[Tensor, Tensor] | None = None,
    objective: Objective | None = None,
    names: Sequence[str] | None = None,
    include_biases: bool = False,
    exclude: Sequence[str] = (),
    scope: str = "global",
    hessian: str = "exact",
    samples: int = 100,
    damping: float = 0.0,
    mask: PruneMask | None = None,
    max_params: int = 4096,
    generator: torch.Generator | None = None,
    chunk: int | None = _GN_CHUNK,
) -> tuple[PruneMask, PruneReport]:
    """Prune ``fraction`` of ``model``'s weights by ``method``; returns ``(mask, report)``.

    Args:
        method: ``"magnitude"``, ``"obd"`` or ``"obs"`` (module docstring).
        fraction: the fraction of prunable weights pruned *in total* after this call (weights
            already pruned by ``mask`` count), so repeated calls with a growing fraction and
            retraining in between give the iterative prune-retrain schedule.
        loss_fn, data: ``loss_fn(model(x), y)`` with ``data = (x, y)``: the training loss whose
            Hessian OBD/OBS use (use the full training set, or a large batch, at a minimum).
        objective: instead of ``loss_fn``/``data``, any ``params -> scalar`` taking a dict of
            the prunable parameters by name (e.g. a quadratic).
        names: the parameters to prune; default: every parameter that is not a bias
            (``include_biases``) and not matched by ``exclude`` (rules of
            :func:`smithing.regularize.penalties.select`).
        scope: ``"global"`` (one ranking over all chosen parameters; OBS: one joint Hessian) or
            ``"layer"`` (``fraction`` of each parameter; OBS: one Hessian block per parameter).
        hessian: the curvature OBD/OBS use (magnitude ignores it). OBD's diagonal:
            ``"exact"``, ``"hutchinson"`` (``samples`` probes), ``"fisher"`` or
            ``"empirical_fisher"`` (sampled / data labels), or ``"gauss_newton"`` (the exact
            diagonal of :func:`gauss_newton_matrix`, which ``"fisher"`` estimates). OBS's full
            matrix: ``"exact"`` (default; the loss's Hessian, usually indefinite at a trained
            ReLU network: then a ``ValueError`` asks for ``damping`` or ``"gauss_newton"``) or
            ``"gauss_newton"`` (:func:`gauss_newton_matrix`, positive semi-definite; with a
            ``damping > 0`` when it is singular). The Fisher and Gauss-Newton options need
            ``data`` (only ``x`` is used for them), assume the model outputs logits and the
            loss is the mean softmax cross-entropy; with ``"gauss_newton"`` and no ``loss_fn``,
            the report's losses are that cross-entropy.
        damping: added to the Hessian's diagonal before OBS inverts it (the kept block of
            ``H + damping I`` must be positive definite).
        mask: an earlier mask to extend (its pruned weights stay pruned).
        max_params: refuse full ``(n, n)`` matrices (exact Hessian, OBS's Gauss-Newton) over
            more weights than this.
        chunk: examples per batch of the per-example gradients and Jacobians of the Fisher and
            Gauss-Newton options (memory ``chunk * classes * weights`` numbers); None: all
            ``data`` at once. The batching changes the summation order, hence the last bits.

    The model's weights are modified in place (pruned ones set to 0; OBS also moves the others).
    The model should be in eval mode when a loss is evaluated (dropout off).
    """
    entry = PRUNE_METHODS.entry(method)
    check(0.0 <= fraction <= 1.0, "fraction", fraction, "a fraction in [0, 1]")
    check(scope in ("global", "layer"), "scope", scope, "'global' or 'layer'")
    check(hessian in HESSIANS, "hessian", hessian, f"one of {_names_list(HESSIANS)}")
    check(damping >= 0, "damping", damping, "a non-negative number")
    check(
        chunk is None or (isinstance(chunk, int) and chunk >= 1),
        "chunk",
        chunk,
        "None or a positive number of examples",
    )
    all_params = dict(model.named_parameters())
    if names is None:
        chosen = dict(select(all_params.items(), include_biases=include_biases, exclude=exclude))
    else:
        unknown = [n for n in names if n not in all_params]
        check(not unknown, "names", unknown, f"parameter names of the model: {list(all_params)}")
        chosen = {n: all_params[n] for n in names}
    check(len(chosen) > 0, "names", names, "at least one parameter to prune")
    if mask is None:
        mask = PruneMask.ones_like(chosen.items())
    else:
        mask = PruneMask(mask.state_dict())
        for n, p in chosen.items():
            mask.masks.setdefault(n, torch.ones_like(p, dtype=torch.bool))
    if hessian == "gauss_newton" and loss_fn is None:
        loss_fn = nn.functional.cross_entropy  # the loss G is the Gauss-Newton matrix of
    if objective is None and loss_fn is not None and data is not None:
        objective = make_objective(model, loss_fn, *data)
    if scope == "global":
        n_total = sum(p.numel() for p in chosen.values())
        k_new = {None: round(fraction * n_total) - sum(int((~mask.masks[n]).sum()) for n in chosen)}
    else:
        k_new = {
            n: round(fraction * p.numel()) - int((~mask.masks[n]).sum()) for n, p in chosen.items()
        }

    def loss_now() -> float | None:
        if objective is None:
            return None
        with torch.no_grad():
            return float(objective({n: p.detach() for n, p in chosen.items()}))

    mask.apply_(all_params)
    before = loss_now()
    ctx = _Context(
        model,
        chosen,
        mask,
        k_new,
        objective,
        loss_fn,
        data,
        hessian,
        samples,
        damping,
        max_params,
        generator,
        chunk,
    )
    saliency, predicted, order = entry.obj(ctx)
    mask.apply_(all_params)
    sub = PruneMask({n: mask.masks[n] for n in chosen})
    report = PruneReport(
        method=method,
        fraction=fraction,
        n_total=sub.n_total(),
        n_pruned=sub.n_pruned(),
        per_param=sub.per_param(),
        saliency={n: s.detach() for n, s in saliency.items()},
        predicted_increase=predicted,
        loss_before=before,
        loss_after=loss_now(),
        removed_order=order,
    )
    return mask, report
