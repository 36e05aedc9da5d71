"""The pruning methods by name (``magnitude``, ``obd``, ``obs``) and :func:`prune`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from smithing._registry import Registry, check, given
from smithing.regularize.penalties import select
from smithing.regularize.prune.hessian import (
    HESSIAN_DIAGONALS,
    _flatten,
    _gauss_newton,
    _unflatten,
    fisher_diagonal,
    full_hessian,
    gauss_newton_matrix,
    make_objective,
)
from smithing.regularize.prune.masks import (
    Objective,
    PruneMask,
    PruneReport,
)
from smithing.regularize.prune.saliency import (
    magnitude_saliency,
    obd_saliency,
    obs_inverse,
    obs_prune,
    obs_saliency,
)

__all__ = [
    "HESSIANS",
    "OBS_HESSIANS",
    "PRUNE_METHODS",
    "prune",
]


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
        x = given(ctx.data, "data", "(x, y) for hessian='gauss_newton'")[0]
        names = list(ctx.params)
        diag = _gauss_newton(ctx.model, names, x, ctx.chunk, diagonal=True)  # (n,)
        h = _unflatten(diag, {n: ctx.params[n].detach() for n in names})
        h = {n: v.to(ctx.params[n].dtype) for n, v in h.items()}
    elif ctx.hessian in ("fisher", "empirical_fisher"):
        x, y = given(ctx.data, "data", "(x, y) for a Fisher estimate")
        h = fisher_diagonal(
            ctx.model,
            list(ctx.params),
            x,
            None if ctx.hessian == "fisher" else y,
            generator=ctx.generator,
            chunk=ctx.chunk if ctx.chunk is not None else x.shape[0],
        )
    else:
        objective = given(ctx.objective, "objective", "an objective or loss_fn + data")
        if ctx.hessian == "exact":
            n = sum(p.numel() for p in ctx.params.values())
            check(
                n <= ctx.max_params,
                "max_params",
                ctx.max_params,
                f">= the {n} weights for an exact Hessian (or hessian='hutchinson'/'fisher')",
            )
        h = HESSIAN_DIAGONALS.get(ctx.hessian)(
            objective, ctx.params, samples=ctx.samples, generator=ctx.generator
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
        x = given(ctx.data, "data", "(x, y) for hessian='gauss_newton'")[0]

        def matrix(names: list[str], sub: dict[str, Tensor]) -> Tensor:
            return gauss_newton_matrix(ctx.model, names, x, chunk=ctx.chunk)  # (n, n)

    else:
        objective = given(ctx.objective, "objective", "an objective or loss_fn + data")

        def matrix(names: list[str], sub: dict[str, Tensor]) -> Tensor:
            return full_hessian(objective, sub).double()  # (n, n)

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
        h = matrix(names, sub)  # (n, n): the Gauss-Newton matrix or the loss's Hessian
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
    r"""Prune ``fraction`` of ``model``'s weights by ``method``; returns ``(mask, report)``.

    $$
    s_k^{\text{magnitude}} = \lvert w_k \rvert, \qquad
    s_k^{\text{OBD}} = \tfrac12 h_{kk} w_k^2, \qquad
    L_q^{\text{OBS}} = \frac{w_q^2}{2 [H^{-1}]_{qq}}, \quad
    \delta w = -\frac{w_q}{[H^{-1}]_{qq}} H^{-1} e_q
    $$

    The weights $w_k$ of lowest saliency are set to 0 (:func:`obd_saliency`,
    :func:`obs_saliency`): $h_{kk}$ is the diagonal of the loss's Hessian (or of its estimate,
    ``hessian``), $H^{-1}$ the inverse of the full Hessian (plus ``damping`` times $I$) of the
    kept weights; OBS removes one weight $q$ at a time and moves all the others by $\delta w$
    (:func:`obs_prune`).

    Args:
        model: the network, whose weights are pruned in place.
        method: ``"magnitude"``, ``"obd"`` or ``"obs"`` (module docstring).
        fraction: the fraction of prunable weights pruned *in total* after this call (weights
            already pruned by ``mask`` count), so repeated calls with a growing fraction and
            retraining in between give the iterative prune-retrain schedule.
        loss_fn: ``loss_fn(model(x), y)``: the training loss whose Hessian OBD/OBS use.
        data: ``(x, y)`` for ``loss_fn`` (use the full training set, or a large batch, at a
            minimum).
        objective: instead of ``loss_fn``/``data``, any ``params -> scalar`` taking a dict of
            the prunable parameters by name (e.g. a quadratic).
        names: the parameters to prune; default: every parameter that is not a bias
            (``include_biases``) and not matched by ``exclude`` (rules of
            :func:`smithing.regularize.penalties.select`).
        include_biases: with the default ``names``, prune biases too.
        exclude: with the default ``names``, parameter names or patterns not pruned.
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
        samples: Hutchinson probes (``hessian="hutchinson"``).
        damping: added to the Hessian's diagonal before OBS inverts it (the kept block of
            ``H + damping I`` must be positive definite).
        mask: an earlier mask to extend (its pruned weights stay pruned).
        max_params: refuse full ``(n, n)`` matrices (exact Hessian, OBS's Gauss-Newton) over
            more weights than this.
        generator: randomness of the Hutchinson probes and the Fisher's sampled labels.
        chunk: examples per batch of the per-example gradients and Jacobians of the Fisher and
            Gauss-Newton options (memory ``chunk * classes * weights`` numbers); None: all
            ``data`` at once. The batching changes the summation order, hence the last bits.

    Returns:
        ``(mask, report)``: the :class:`PruneMask` (keep it applied while retraining) and the
        :class:`PruneReport` (losses before and after, predicted increase, removals).

    The model's weights are modified in place (pruned ones set to 0; OBS also moves the others).
    The model should be in eval mode when a loss is evaluated (dropout off).

    References:
        LeCun, Denker & Solla, "Optimal Brain Damage", NIPS 2, 1990; Hassibi & Stork, "Second
        order derivatives for network pruning: Optimal Brain Surgeon", NIPS 5, 1993, eq. 5;
        Han, Pool, Tran & Dally, "Learning both weights and connections for efficient neural
        networks", NIPS 2015 (magnitude, prune and retrain).
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
    k_new: dict[str | None, int]  # None -> one global count, else one per parameter
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
