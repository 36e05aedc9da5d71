"""Second-order information for pruning: the objective as a function of the parameters, the full
Hessian, its diagonal (exact, Hutchinson), the Fisher and Gauss-Newton matrices."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from smithing._registry import Registry, check
from smithing.regularize.prune.masks import (
    Objective,
)

__all__ = [
    "HESSIAN_DIAGONALS",
    "fisher_diagonal",
    "full_hessian",
    "gauss_newton_matrix",
    "hessian_diagonal",
    "make_objective",
]


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
    r"""``mean_i g_i^2`` with ``g_i = d(-log softmax(model(x_i))_{y_i}) / dw`` (per example).

    $$
    F_{kk} = \frac{1}{N} \sum_{i=1}^{N} \left(\frac{\partial}{\partial w_k}
    \left(-\log \operatorname{softmax}(z_i)_{y_i}\right)\right)^2
    $$

    with $z_i$ the logits of example $x_i$ (the rows of ``x``, $N$ of them), $w_k$ a weight of
    the parameters ``names`` and $y_i$ its label (``y``, or drawn from the model's softmax).

    With ``y=None`` the labels are sampled from the model's own softmax: an unbiased estimate of
    the diagonal of the Gauss-Newton matrix ``J^T (diag(q) - q q^T) J`` of the mean cross-entropy
    (the Fisher); with the data's ``y`` it is the empirical Fisher. Assumes ``model`` outputs
    logits and the loss is the mean cross-entropy. The model runs in eval mode.

    Args:
        model: the network, outputting logits ``(N, C)``.
        names: the parameter names whose diagonal is estimated.
        x: the inputs ``(N, ...)``.
        y: the labels ``(N,)``, or ``None`` to sample them from the model (the true Fisher).
        generator: randomness of the sampled labels.
        chunk: examples per vectorized gradient batch (memory bound).

    Returns:
        ``{name: diagonal}``, each shaped like its parameter.

    References:
        Martens, "New insights and perspectives on the natural gradient method", JMLR 21, 2020,
        Sec. 9 (the Fisher as the Gauss-Newton matrix; the empirical Fisher).
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
    r"""The Gauss-Newton (outer-product) matrix of the mean softmax cross-entropy.

    $$
    G = \frac{1}{N} \sum_{i=1}^{N} J_i^\top \left(\operatorname{diag}(q_i) - q_i
    q_i^\top\right) J_i, \qquad J_i = \frac{\partial z_i}{\partial w}, \quad q_i =
    \operatorname{softmax}(z_i)
    $$

    with $z_i$ the logits of example $i$ of ``x`` ($N$ examples, $C$ classes) and $w$ the
    weights ``names`` flattened.

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

    Args:
        model: the network, outputting logits ``(N, C)``.
        names: the parameter names (the order of the rows and columns).
        x: the inputs ``(N, ...)``.
        chunk: examples per Jacobian batch (``None``: all at once).

    Returns:
        $G$, ``(n, n)`` float64.

    References:
        Hassibi & Stork, "Second order derivatives for network pruning: Optimal Brain
        Surgeon", NIPS 5, 1993, Sec. 3.
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
    r"""Diagonal of the Hessian of ``objective`` at ``params`` (``"exact"`` or ``"hutchinson"``).

    $$
    h_{kk} = \frac{\partial^2 E}{\partial w_k^2}, \qquad
    \hat h = \frac{1}{S} \sum_{s=1}^{S} z_s \odot (H z_s)
    $$

    with $E$ = ``objective``, $w_k$ the entries of ``params``; ``"exact"`` takes the diagonal of
    the full Hessian $H$ (``torch.func.hessian``, $n^2$ memory), ``"hutchinson"`` the unbiased
    estimate $\hat h$ from $S$ = ``samples`` Rademacher vectors $z_s$ ($\pm 1$ entries) and
    Hessian-vector products. The Fisher estimates need the model and data:
    :func:`fisher_diagonal`.

    Args:
        objective: ``params -> loss`` (:func:`make_objective`).
        params: ``{name: tensor}``, the point and the weights differentiated.
        method: ``"exact"`` or ``"hutchinson"``.
        samples: Hutchinson's $S$.
        generator: randomness of the Rademacher vectors.

    Returns:
        ``{name: diagonal}``, each shaped like its parameter.

    References:
        LeCun, Denker & Solla, "Optimal Brain Damage", NIPS 2, 1990 (the diagonal);
        Bekas, Kokiopoulou & Saad, "An estimator for the diagonal of a matrix", Applied
        Numerical Mathematics 57, 2007 (the stochastic estimate).
    """
    check(method in ("exact", "hutchinson"), "method", method, "'exact' or 'hutchinson'")
    return HESSIAN_DIAGONALS.get(method)(objective, params, samples=samples, generator=generator)
