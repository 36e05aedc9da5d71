"""Partition functions of RBMs: annealed importance sampling and exact enumeration.

AIS (Neal, "Annealed importance sampling", Statistics and Computing 2001), as applied to RBMs by
Salakhutdinov & Murray, "On the quantitative analysis of deep belief networks", ICML 2008, and
their released code (``RBM_AIS.m``). Intermediate distributions between a base-rate model A
(``W = 0``, ``c = 0``, visible biases ``b_A`` fitted to the data) and the RBM B::

    f_beta(v) = exp((1 - beta) b_A^T v + beta b^T v) * prod_j (1 + exp(beta (c_j + v^T W[:, j])))

(the base model's hidden units are summed out: they contribute ``2^n_hidden``). A run draws
``v_1 ~ p_A`` and, for ``beta_1 < ... < beta_K``, accumulates
``log w += log f_beta_k(v_k) - log f_beta_{k-1}(v_k)`` and moves ``v_k -> v_{k+1}`` by one
Gibbs sweep that leaves ``p_beta_k`` invariant (``h ~ sigmoid(beta (c + v W))``, then
``v ~ sigmoid((1 - beta) b_A + beta (b + W h))``). Then ``Z_B / Z_A ~ mean(w)``.

For a Gaussian-Bernoulli RBM (see :mod:`smithing.pretrain.rbm`) the same scheme uses the base
model ``N(b_A, sigma^2)`` with the RBM's variances: ``b^T v`` terms become
``-sum_i (v_i - b_i)^2 / (2 sigma_i^2)`` and the visible transition is
``v ~ N((1 - beta) b_A + beta (b + W h), sigma^2)`` (an extension; the paper treats binary RBMs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from smithing._registry import check
from smithing.pretrain.hybrid.modules import ClassRBM
from smithing.pretrain.rbm import (
    BernoulliRBM,
    free_energy,
    gaussian_free_energy,
    sample_bernoulli,
    sample_gaussian,
)
from smithing.pretrain.rbm.functional import _row
from smithing.pretrain.rbm.modules import _gaussian_visibles

__all__ = [
    "AISResult",
    "ais_log_z",
    "average_log_prob",
    "base_rate_biases",
    "exact_log_z",
    "salakhutdinov_betas",
]


def salakhutdinov_betas(
    dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> Tensor:
    """The inverse temperatures of Salakhutdinov & Murray's code: steps of 1e-3 up to 0.5,
    1e-4 up to 0.9 and 1e-5 up to 1.0 (14,501 distinct values; their Matlab vector repeats
    0.5 and 0.9, which adds nothing to the weights)."""
    kw: dict[str, Any] = {"dtype": dtype, "device": device}
    return torch.cat(
        [
            torch.linspace(0.0, 0.5, 501, **kw)[:-1],
            torch.linspace(0.5, 0.9, 4001, **kw)[:-1],
            torch.linspace(0.9, 1.0, 10001, **kw),
        ]
    )


def base_rate_biases(data: Tensor, pseudocount: float = 0.05, eps: float = 1e-6) -> Tensor:
    """Visible biases of the base-rate model, fitted to binary ``data (*M, n, n_visible)``.

    ``p_i = (mean_i + pseudocount) / (1 + pseudocount)``, ``b_A,i = log(p_i / (1 - p_i))``:
    the authors' ``base_rate.m`` smoothing (5 pseudo-counts per batch of 100 examples =
    ``pseudocount`` 0.05 per example). Departure: ``p`` is clipped to ``[eps, 1 - eps]`` so an
    always-on pixel gives a finite bias.
    """
    check(pseudocount >= 0, "pseudocount", pseudocount, "a non-negative number")
    p = ((data.to(torch.float64).mean(-2) + pseudocount) / (1 + pseudocount)).clamp(eps, 1 - eps)
    return torch.log(p) - torch.log1p(-p)


@dataclass
class AISResult:
    """An AIS estimate of ``log Z``; tensors are ``(*M,)`` (0-dim for a single RBM).

    ``log_z_up`` / ``log_z_down`` are ``log(mean(w) +- 3 std(w) / sqrt(n_runs)) + log Z_A``,
    the authors' +-3 standard-deviation interval (``-inf`` when the lower end is not positive).
    """

    log_z: Tensor
    log_z_up: Tensor
    log_z_down: Tensor
    log_weights: Tensor  # (*M, n_runs) log importance weights, without log Z_A
    log_z_base: Tensor
    n_betas: int

    def __float__(self) -> float:
        return float(self.log_z)


def _params(rbm: BernoulliRBM, dtype: torch.dtype) -> dict[str, Tensor]:
    p = {"W": rbm.W, "b": rbm.b, "c": rbm.c}
    if _gaussian_visibles(rbm):
        p["log_var"] = rbm.log_var
    return {k: v.detach().to(dtype) for k, v in p.items()}


@torch.no_grad()
def ais_log_z(
    rbm: BernoulliRBM,
    *,
    data: Tensor | None = None,
    n_runs: int = 100,
    betas: Tensor | int | None = None,
    base_biases: Tensor | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> AISResult:
    r"""Estimate ``log Z`` of ``rbm`` (ensembles: one estimate per member) by AIS.

    $$
    f_\beta(v) = e^{(1 - \beta) b_A^\top v + \beta b^\top v} \prod_j \left(1 +
    e^{\beta (c_j + \sum_i v_i W_{ij})}\right), \qquad
    \log w^{(r)} = \sum_{k=1}^{K} \left[\log f_{\beta_k}(v_k^{(r)}) - \log
    f_{\beta_{k-1}}(v_k^{(r)})\right]
    $$

    $$
    \hat Z_B = Z_A \cdot \frac{1}{R} \sum_{r=1}^{R} w^{(r)}, \qquad Z_A = 2^{n_h}
    \prod_i \left(1 + e^{b_{A,i}}\right)
    $$

    with $0 = \beta_0 < \beta_1 < \dots < \beta_K = 1$ the inverse temperatures
    (``betas``), $b_A$ the base-rate model's visible biases (``base_biases`` or fitted to
    ``data``), $W, b, c$ the RBM's parameters, $n_h$ its hidden units, $R$ = ``n_runs`` runs,
    $v_1^{(r)} \sim p_A$ and $v_{k+1}^{(r)}$ drawn from $v_k^{(r)}$ by one Gibbs sweep that
    leaves $p_{\beta_k} \propto f_{\beta_k}$ invariant. The estimate is computed in the log
    domain (``logsumexp``); $\mathbb{E}[\hat Z_B] = Z_B$, so $\log \hat Z_B$ tends to
    underestimate $\log Z_B$ (Jensen). For a Gaussian RBM the $b^\top v$ terms become
    $-\sum_i (v_i - b_i)^2 / (2 \sigma_i^2)$ (module docstring).

    Args:
        rbm: the RBM (Bernoulli or Gaussian-Bernoulli visible units; an ensemble allowed).
        data: training data for the base-rate model (:func:`base_rate_biases`; for a Gaussian
            RBM, its mean). Without it (and without ``base_biases``) the base model is uniform
            (Bernoulli) or ``N(0, sigma^2)`` (Gaussian), as in the authors' code.
        n_runs: parallel AIS runs (vectorized; default 100 as in the paper).
        betas: increasing inverse temperatures from 0 to 1 (a tensor), a count for a uniform
            ``linspace(0, 1, betas)``, or None for :func:`salakhutdinov_betas` (~14,500).
        base_biases: explicit base-model visible biases (Bernoulli) or mean (Gaussian).
        generator: randomness of the initial states and the Gibbs sweeps.
        dtype: computation dtype; float64 by default because ``log w`` sums ~14,500 small
            differences of large softplus sums.

    Returns:
        An :class:`AISResult`: $\log \hat Z_B$, its $\pm 3$ standard-deviation interval, the
        log weights and $\log Z_A$.

    Note:
        Departure from the paper: the Gaussian-Bernoulli extension (the paper treats binary
        RBMs), and the base-rate probabilities clipped to ``[eps, 1 - eps]``
        (:func:`base_rate_biases`).

    References:
        Neal, "Annealed importance sampling", Statistics and Computing 11, 2001; Salakhutdinov
        & Murray, "On the quantitative analysis of deep belief networks", ICML 2008, Sec. 3 and
        their code ``RBM_AIS.m``.

    Cost: one Python loop over betas with two ``(n_runs, n_visible) x (n_visible, n_hidden)``
    matmuls per step.
    """
    check(isinstance(n_runs, int) and n_runs >= 2, "n_runs", n_runs, "an int >= 2")
    P = _params(rbm, dtype)
    W, b, c = P["W"], P["b"], P["c"]
    dev = W.device
    if betas is None:
        betas = salakhutdinov_betas(dtype, dev)
    elif isinstance(betas, int):
        check(betas >= 2, "betas", betas, "an int >= 2, a tensor or None")
        betas = torch.linspace(0.0, 1.0, betas, dtype=dtype, device=dev)
    else:
        betas = torch.as_tensor(betas, dtype=dtype, device=dev)
        check(
            betas.dim() == 1
            and betas.numel() >= 2
            and float(betas[0]) == 0.0
            and float(betas[-1]) == 1.0
            and bool((betas[1:] >= betas[:-1]).all()),
            "betas",
            tuple(betas.shape),
            "an increasing 1-d tensor from 0 to 1",
        )
    gaussian = rbm.visible_type == "gaussian"
    if base_biases is not None:
        bA = base_biases.to(dtype=dtype, device=dev)
    elif data is not None:
        bA = data.to(dtype).mean(-2) if gaussian else base_rate_biases(data).to(dev)
    else:
        bA = torch.zeros_like(b)
    check(
        bA.shape[-1] == rbm.n_visible,
        "base_biases.shape",
        tuple(bA.shape),
        f"(..., {rbm.n_visible})",
    )
    nh, nv = rbm.n_hidden, rbm.n_visible
    lead = W.shape[:-2]
    shape = (*lead, n_runs, nv)
    bA = bA.expand(*lead, nv)
    if gaussian:
        log_var = P["log_var"]
        inv_var = torch.exp(-_row(log_var))  # (*M, 1, nv)
        v = sample_gaussian(_row(bA).expand(shape).contiguous(), log_var, generator)
        # -sum (v - a)^2 / (2 sigma^2) = (v / sigma^2)^T a - q(v) - sum a^2 / (2 sigma^2)
        const_a = 0.5 * (bA**2 * torch.exp(-log_var)).sum(-1).unsqueeze(-1)  # (*M, 1)
        const_b = 0.5 * (b**2 * torch.exp(-log_var)).sum(-1).unsqueeze(-1)
        log_z_base = 0.5 * (log_var + math.log(2 * math.pi)).sum(-1) + nh * math.log(2)
    else:
        v = sample_bernoulli(torch.sigmoid(_row(bA)).expand(shape).contiguous(), generator)
        log_z_base = F.softplus(bA).sum(-1) + nh * math.log(2)  # log Z_A
    # one matmul gives the hidden inputs and both visible terms: [W | b_A | b]
    W_ext = torch.cat([W, bA.unsqueeze(-1), b.expand(*lead, nv).unsqueeze(-1)], -1)
    W_t = W.transpose(-1, -2)  # (*M, nh, nv)
    c_row, bA_row, db_row = _row(c), _row(bA), _row(b - bA)

    def state(v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(a_A(v), a_B(v) - a_A(v), x = c + drive(v) W) with log f_beta = a_A + beta (a_B - a_A)
        + sum_j softplus(beta x_j)."""
        if gaussian:
            out = (v * inv_var) @ W_ext  # (*M, R, nh + 2)
            qv = 0.5 * (v * v * inv_var).sum(-1)
            t_a, t_b = out[..., nh] - qv - const_a, out[..., nh + 1] - qv - const_b
        else:
            out = v @ W_ext  # (*M, R, nh + 2)
            t_a, t_b = out[..., nh], out[..., nh + 1]  # b_A^T v, b^T v
        return t_a, t_b - t_a, out[..., :nh] + c_row

    def log_f(beta: float, t_a: Tensor, dt: Tensor, bx: Tensor) -> Tensor:
        # log f_beta(v) = (1 - beta) a_A(v) + beta a_B(v) + sum_j softplus(beta x_j)
        return t_a + beta * dt + F.softplus(bx).sum(-1)

    t_a, dt, x = state(v)
    logw = -log_f(0.0, t_a, dt, 0.0 * x)  # -log f_0(v_1)
    for beta in betas[1:-1].tolist():
        bx = beta * x  # (*M, R, nh)
        logw += log_f(beta, t_a, dt, bx)  # + log f_beta_k(v_k)
        h = sample_bernoulli(torch.sigmoid(bx), generator)  # h ~ p_beta(h | v)
        # v ~ p_beta(v | h): mean / logit (1 - beta) b_A + beta (b + W h)
        pre = torch.add(bA_row + beta * db_row, h @ W_t, alpha=beta)  # (*M, R, nv)
        if gaussian:
            v = sample_gaussian(pre, log_var, generator)
        else:
            v = sample_bernoulli(torch.sigmoid(pre), generator)
        t_a, dt, x = state(v)
        logw -= log_f(beta, t_a, dt, beta * x)  # - log f_beta_k(v_{k+1})
    logw += log_f(1.0, t_a, dt, x)  # + log f_1(v_K)

    log_r = torch.logsumexp(logw, -1) - math.log(n_runs)  # log mean(w)
    top = logw.max(-1, keepdim=True).values
    # log(std(w) / sqrt(R)), shifted by the max for stability (the authors shift by the mean)
    log_sd = torch.log(torch.exp(logw - top).std(-1)) + top.squeeze(-1) - 0.5 * math.log(n_runs)
    three = math.log(3) + log_sd
    up = torch.logaddexp(three, log_r)
    diff = torch.where(
        three < log_r,
        log_r + torch.log1p(-torch.exp(three - log_r)),
        torch.full_like(log_r, -math.inf),
    )
    log_z_base = log_z_base.to(log_r)
    return AISResult(
        log_r + log_z_base, up + log_z_base, diff + log_z_base, logw, log_z_base, int(betas.numel())
    )


def _bits(start: int, stop: int, n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    idx = torch.arange(start, stop, device=device)
    return ((idx.unsqueeze(-1) >> torch.arange(n, device=device)) & 1).to(dtype)  # (S, n)


def exact_log_z(rbm: BernoulliRBM | ClassRBM, *, max_units: int = 24, chunk: int = 2**14) -> Tensor:
    r"""``log Z`` by brute-force enumeration (float64), ``(*M,)``: the one exact partition function
    of the library, for RBMs, Gaussian RBMs and classification RBMs.

    $$
    \log Z = \log \sum_{h \in \{0,1\}^{n_h}} \exp\left(c^\top h + \sum_i
    \operatorname{softplus}\left(b_i + \sum_j W_{ij} h_j\right)\right)
    = \log \sum_{v \in \{0,1\}^{n_v}} e^{-F(v)}
    $$

    for a Bernoulli RBM with weights $W$, visible biases $b$ and hidden biases $c$, enumerated
    over the smaller layer ($F$ the free energy). The other models:

    Classification RBM (:class:`~smithing.pretrain.ClassRBM`): over the hiddens, summing out ``x``
    and ``y`` in closed form, ``log Z = logsumexp_h [c^T h + sum_i softplus(b_i + (W h)_i)
    + logsumexp_y (d_y + U[y] . h)]``. Bernoulli RBM: over the smaller layer,
    ``log Z = logsumexp_h [c^T h + sum_i softplus(b_i + W[i] h)]`` or ``logsumexp_v [-F(v)]``.
    Gaussian RBM: over the hiddens, with the Gaussian
    integral over ``v``: ``log Z = logsumexp_h [c^T h + sum_i (mu_i^2 - b_i^2) / (2 sigma_i^2)]
    + sum_i log sqrt(2 pi sigma_i^2)``, ``mu = b + W h``. ``2^n`` states are visited in chunks
    of ``chunk``; ``n > max_units`` raises ``ValueError``. Differentiable with respect to a
    classification RBM's parameters (the exact log-likelihood gradient in the tests); an RBM's
    ``log Z`` is computed without autograd.

    Args:
        rbm: a :class:`~smithing.pretrain.BernoulliRBM` (Bernoulli or Gaussian visible units)
            or a :class:`~smithing.pretrain.ClassRBM`; an ensemble allowed.
        max_units: the most units of the enumerated layer ($2^n$ states).
        chunk: states per batch of the enumeration.

    Returns:
        $\log Z$, ``(*M,)`` float64.

    Examples:
        >>> import math, torch
        >>> from smithing.pretrain import BernoulliRBM
        >>> rbm = BernoulliRBM(3, 2)
        >>> with torch.no_grad():
        ...     _ = rbm.W.zero_(), rbm.b.zero_(), rbm.c.zero_()
        >>> round(float(exact_log_z(rbm)), 4) == round(5 * math.log(2), 4)  # 2^(3+2) states
        True
    """
    if isinstance(rbm, ClassRBM):
        return _class_rbm_log_z(rbm, max_units=max_units, chunk=chunk)
    with torch.no_grad():
        return _rbm_log_z(rbm, max_units=max_units, chunk=chunk)


def _rbm_log_z(rbm: BernoulliRBM, *, max_units: int, chunk: int) -> Tensor:
    P = _params(rbm, torch.float64)
    W, b, c = P["W"], P["b"], P["c"]
    gaussian = rbm.visible_type == "gaussian"
    over_hidden = gaussian or rbm.n_hidden <= rbm.n_visible
    n = rbm.n_hidden if over_hidden else rbm.n_visible
    check(
        n <= max_units,
        "rbm",
        f"{rbm.n_visible}x{rbm.n_hidden} RBM",
        f"an enumerated layer "
        f"of at most max_units={max_units} units (2^{n} states is too many; use ais_log_z)",
    )

    def score(s: Tensor) -> Tensor:  # s (S, n) -> (*M, S)
        if gaussian:
            var = torch.exp(_row(P["log_var"]))
            mu = s @ W.transpose(-1, -2) + _row(b)  # (*M, S, nv)
            return (s * _row(c)).sum(-1) + ((mu**2 - _row(b) ** 2) / (2 * var)).sum(-1)
        if over_hidden:  # c^T h + sum_i softplus(b_i + W[i] h)
            return (s * _row(c)).sum(-1) + F.softplus(s @ W.transpose(-1, -2) + _row(b)).sum(-1)
        # -F(v) = b^T v + sum_j softplus(c_j + v W[:, j])
        return (s * _row(b)).sum(-1) + F.softplus(s @ W + _row(c)).sum(-1)

    log_z = _logsumexp_states(n, chunk, W.device, score)
    if gaussian:
        log_z = log_z + 0.5 * (P["log_var"] + math.log(2 * math.pi)).sum(-1)
    return log_z


def _class_rbm_log_z(model: ClassRBM, *, max_units: int, chunk: int) -> Tensor:
    W, b, c, U, d = (t.to(torch.float64) for t in model.params())  # differentiable
    H = W.shape[-1]
    check(
        max_units >= H,
        "model",
        f"a classification RBM with {H} hidden units",
        f"at most max_units={max_units} hidden units (2^{H} states is too many)",
    )

    def score(h: Tensor) -> Tensor:  # h (S, H) -> (*M, S)
        val = (h * _row(c)).sum(-1) + F.softplus(h @ W.transpose(-1, -2) + _row(b)).sum(-1)
        return val + torch.logsumexp(h @ U.transpose(-1, -2) + _row(d), -1)

    return _logsumexp_states(H, chunk, W.device, score)


def _logsumexp_states(
    n: int, chunk: int, device: torch.device, score: Callable[[Tensor], Tensor]
) -> Tensor:
    """``logsumexp`` of ``score(s) (*M, S)`` over all ``2^n`` binary states ``s``, visited in
    chunks of ``chunk`` states (float64), ``(*M,)``: the enumeration every exact ``log Z`` uses."""
    parts = []
    for start in range(0, 2**n, chunk):
        s = _bits(start, min(start + chunk, 2**n), n, torch.float64, device)  # (S, n)
        parts.append(torch.logsumexp(score(s), -1))  # (*M,)
    return torch.logsumexp(torch.stack(parts, -1), -1)


@torch.no_grad()
def average_log_prob(rbm: BernoulliRBM, data: Tensor, log_z: Tensor | float | AISResult) -> Tensor:
    r"""Mean log-probability ``mean_n(-F(v_n)) - log Z`` of ``data (*M, n, n_visible)`` (nats,
    float64), ``(*M,)``. With an AIS ``log Z`` this is the paper's test log-probability.

    $$
    \frac{1}{N} \sum_{n=1}^{N} \log p(v_n) = -\frac{1}{N} \sum_{n=1}^{N} F(v_n) - \log Z
    $$

    with $v_n$ the $N$ rows of ``data``, $F$ the RBM's free energy and $\log Z$ = ``log_z``.

    Args:
        rbm: the RBM.
        data: the examples ``(*M, N, n_visible)``.
        log_z: $\log Z$ (a tensor, a float, or an :class:`AISResult`).

    Returns:
        The mean log-probability in nats, ``(*M,)`` float64.

    References:
        Salakhutdinov & Murray, "On the quantitative analysis of deep belief networks", ICML
        2008.
    """
    if isinstance(log_z, AISResult):
        log_z = log_z.log_z
    P = _params(rbm, torch.float64)
    v = data.to(torch.float64)
    if rbm.visible_type == "gaussian":
        fe = gaussian_free_energy(v, P["W"], P["b"], P["c"], P["log_var"])
    else:
        fe = free_energy(v, P["W"], P["b"], P["c"])
    return (-fe).mean(-1) - torch.as_tensor(log_z, dtype=torch.float64, device=fe.device)
