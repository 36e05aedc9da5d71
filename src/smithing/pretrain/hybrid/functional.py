r"""The classification RBM's equations as pure functions on tensors: energies, the exact class
posterior, and the gradients of the discriminative, generative and unlabeled objectives (see
the package docstring for the formulas). Every function takes the parameters ``W, b, c, U, d``
explicitly (leading members axes allowed) and holds no state.

The training objectives (maximized; :data:`OBJECTIVES` gives the weights of the two terms):

$$
\mathcal{L}_{\text{gen}} = \sum_{n} \log p(y_n, x_n), \quad
\mathcal{L}_{\text{disc}} = \sum_{n} \log p(y_n \mid x_n), \quad
\mathcal{L}_{\text{hybrid}} = \mathcal{L}_{\text{disc}} + \alpha\, \mathcal{L}_{\text{gen}}, \quad
\mathcal{L}_{\text{semi}} = \mathcal{L} + \beta \sum_{x \in \mathcal{D}_u} \log p(x)
$$

over the labeled examples $(x_n, y_n)$ and the unlabeled inputs $\mathcal{D}_u$, with
$\mathcal{L}$ any of the first three; their gradients are :func:`generative_gradient` (CD-k /
PCD), :func:`discriminative_gradient` (exact) and :func:`unlabeled_gradient` (CD).

References:
    Larochelle & Bengio, "Classification using discriminative restricted Boltzmann machines",
    ICML 2008, Sec. 4 (hybrid) and Sec. 5 (semi-supervised); Larochelle, Mandel, Pascanu &
    Bengio, "Learning algorithms for the classification restricted Boltzmann machine", JMLR 13,
    2012, eq. 9 and Sec. 3.3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from smithing._registry import check
from smithing.pretrain.rbm import sample_bernoulli, visible_probs

__all__ = [
    "OBJECTIVES",
    "class_logits",
    "class_probs",
    "discriminative_gradient",
    "generative_gradient",
    "hidden_inputs",
    "joint_energy",
    "joint_free_energy",
    "joint_hidden_probs",
    "joint_statistics",
    "log_proba",
    "marginal_hidden_probs",
    "sample_onehot",
    "unlabeled_gradient",
]

PARAMS = ("W", "b", "c", "U", "d")

#: objective name -> (weight of the discriminative term, weight of the generative term) given
#: alpha: L = w_disc * L_disc + w_gen * L_gen
OBJECTIVES: dict[str, Callable[[float], tuple[float, float]]] = {
    "generative": lambda alpha: (0.0, 1.0),
    "discriminative": lambda alpha: (1.0, 0.0),
    "hybrid": lambda alpha: (1.0, float(alpha)),
}


# ------------------------------------------------------------------ pure functions


def _vec(bias: Tensor, k: int) -> Tensor:
    """A bias ``(*M, n)`` made broadcastable against ``(*M, <k axes>, n)``."""
    if bias.dim() < 2:
        return bias
    return bias.reshape(*bias.shape[:-1], *([1] * k), bias.shape[-1])


def _onehot(y: Tensor, n_classes: int, dtype: torch.dtype) -> Tensor:
    """Integer labels ``(*M?, B)`` -> one-hot ``(*M?, B, C)``; float ``(.., C)`` pass through."""
    if y.is_floating_point():
        return y.to(dtype)
    return F.one_hot(y.long(), n_classes).to(dtype)


def hidden_inputs(x: Tensor, W: Tensor, c: Tensor, U: Tensor) -> Tensor:
    r"""``o[n, y, j] = c_j + U[y, j] + (x_n W)_j`` for every class at once: ``(*M, B, C, H)``.

    $$
    o_{yj}(x) = c_j + U_{yj} + \sum_i x_i W_{ij}
    $$

    the input of hidden unit $j$ given the input $x$ (``x``) and the class $y$, for every class;
    $W$ = ``W`` ``(D, H)``, $c$ = ``c``, $U$ = ``U`` ``(C, H)``.

    Shapes: ``x (*M?, B, D)``, ``W (*M, D, H)``, ``c (*M, H)``, ``U (*M, C, H)``; an optional
    leading members axis ``M`` on the parameters (a members-free ``x`` is shared by all).
    """
    xw = x @ W  # (*M, B, H)
    return xw.unsqueeze(-2) + U.unsqueeze(-3) + _vec(c, 2)  # (*M, B, C, H)


def class_logits(x: Tensor, W: Tensor, c: Tensor, U: Tensor, d: Tensor) -> Tensor:
    r"""``log p(y | x)`` up to a constant: ``d_y + sum_j softplus(o_yj(x))``; ``(*M, B, C)``.

    $$
    p(y \mid x) = \frac{\exp\left(d_y + \sum_j \operatorname{softplus}(o_{yj}(x))\right)}
    {\sum_{y^*} \exp\left(d_{y^*} + \sum_j \operatorname{softplus}(o_{y^*j}(x))\right)}
    $$

    returns the logits, the exponent of the numerator for every class $y$ ($d$ = ``d`` the class
    biases, $o$ from :func:`hidden_inputs`): the hidden units are summed out exactly and the
    $b^\top x$ term cancels.

    Args:
        x: inputs ``(*M?, B, D)``.
        W: weights ``(*M, D, H)``.
        c: hidden biases ``(*M, H)``.
        U: class-hidden weights ``(*M, C, H)``.
        d: class biases ``(*M, C)``.

    Returns:
        The logits ``(*M, B, C)``.

    References:
        Larochelle & Bengio, "Classification using discriminative restricted Boltzmann
        machines", ICML 2008, eq. 2.
    """
    o = hidden_inputs(x, W, c, U)  # (*M, B, C, H)
    return _vec(d, 1) + F.softplus(o).sum(-1)  # 2008 eq. 2, numerator's log


def log_proba(x: Tensor, W: Tensor, c: Tensor, U: Tensor, d: Tensor) -> Tensor:
    r"""The exact ``log p(y | x)`` for every class, ``(*M, B, C)`` (log-softmax of the logits).

    $$
    \log p(y \mid x) = \operatorname{logsoftmax}_y\left(d_y + \sum_j
    \operatorname{softplus}(o_{yj}(x))\right)
    $$

    (:func:`class_logits`; arguments as there).

    Args:
        x: inputs ``(*M?, B, D)``.
        W: weights ``(*M, D, H)``.
        c: hidden biases ``(*M, H)``.
        U: class-hidden weights ``(*M, C, H)``.
        d: class biases ``(*M, C)``.

    Returns:
        ``log p(y | x)`` for every class, ``(*M, B, C)``.
    """
    return torch.log_softmax(class_logits(x, W, c, U, d), -1)


def joint_hidden_probs(x: Tensor, y: Tensor, W: Tensor, c: Tensor, U: Tensor) -> Tensor:
    r"""``p(h_j = 1 | x, y) = sigmoid(c_j + U[y, j] + (x W)_j)``; ``y`` one-hot ``(*M?, B, C)``.

    $$
    p(h_j = 1 \mid x, y) = \sigma\left(c_j + U_{yj} + \sum_i x_i W_{ij}\right)
    $$
    """
    return torch.sigmoid(x @ W + y @ U + _vec(c, 1))  # (*M, B, H)


def class_probs(h: Tensor, U: Tensor, d: Tensor) -> Tensor:
    r"""``p(y | h) = softmax_y(d_y + U[y] . h)``; ``(*M, B, C)``.

    $$
    p(y \mid h) = \frac{\exp(d_y + \sum_j U_{yj} h_j)}{\sum_{y^*} \exp(d_{y^*} + \sum_j
    U_{y^*j} h_j)}
    $$
    """
    return torch.softmax(h @ U.transpose(-1, -2) + _vec(d, 1), -1)


def marginal_hidden_probs(x: Tensor, W: Tensor, c: Tensor, U: Tensor, d: Tensor) -> Tensor:
    r"""The label-free mean code ``E[h | x] = sum_y p(y | x) sigmoid(o_y(x))``; ``(*M, B, H)``.

    $$
    \mathbb{E}[h_j \mid x] = \sum_y p(y \mid x)\, \sigma(o_{yj}(x))
    $$
    """
    o = hidden_inputs(x, W, c, U)  # (*M, B, C, H)
    p = torch.softmax(_vec(d, 1) + F.softplus(o).sum(-1), -1)  # (*M, B, C)
    return torch.einsum("...bc,...bch->...bh", p, torch.sigmoid(o))


def joint_energy(
    x: Tensor, y: Tensor, h: Tensor, W: Tensor, b: Tensor, c: Tensor, U: Tensor, d: Tensor
) -> Tensor:
    r"""``E(y, x, h) = -h^T W x - b^T x - c^T h - d^T e_y - h^T U e_y``; ``(*M, B)``.

    $$
    E(y, x, h) = -\sum_{i,j} x_i W_{ij} h_j - \sum_i b_i x_i - \sum_j c_j h_j - d_y -
    \sum_j U_{yj} h_j
    $$

    with the input $x$ (``x``), the class $y$ (``y``, one-hot $e_y$ ``(*M?, B, C)``), the hidden
    units $h$ (``h``) and the parameters ``W`` ``(D, H)``, ``b``, ``c``, ``U`` ``(C, H)``,
    ``d``; $p(y, x, h) = e^{-E(y, x, h)} / Z$.

    Note:
        The paper's $W$ and $U$ are ``(H, D)`` and ``(H, C)``; here they are stored transposed,
        as in :mod:`smithing.pretrain.rbm`.

    References:
        Larochelle & Bengio, "Classification using discriminative restricted Boltzmann
        machines", ICML 2008, eq. 1.
    """
    return (
        -(x * _vec(b, 1)).sum(-1)
        - (y * _vec(d, 1)).sum(-1)
        - (h * _vec(c, 1)).sum(-1)
        - ((x @ W) * h).sum(-1)
        - ((y @ U) * h).sum(-1)
    )


def joint_free_energy(
    x: Tensor, y: Tensor, W: Tensor, b: Tensor, c: Tensor, U: Tensor, d: Tensor
) -> Tensor:
    r"""``F(y, x) = -b^T x - d_y - sum_j softplus(c_j + U[y, j] + (x W)_j)``; ``(*M, B)``.

    $$
    F(y, x) = -\sum_i b_i x_i - d_y - \sum_j \operatorname{softplus}\left(c_j + U_{yj} +
    \sum_i x_i W_{ij}\right), \qquad p(y, x) = \frac{e^{-F(y, x)}}{Z}
    $$

    ``y`` one-hot ``(*M?, B, C)``.
    """
    pre = x @ W + y @ U + _vec(c, 1)  # (*M, B, H)
    return -(x * _vec(b, 1)).sum(-1) - (y * _vec(d, 1)).sum(-1) - F.softplus(pre).sum(-1)


def sample_onehot(p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One-hot draws from the categorical rows of ``p (..., C)`` by inverting the CDF.

    Without a generator it uses ``torch.rand_like`` (vmap-safe with ``randomness="different"``).
    """
    if generator is None:
        u = torch.rand_like(p[..., :1])
    else:
        u = torch.rand(p[..., :1].shape, generator=generator, dtype=p.dtype, device=p.device)
    cdf = p.cumsum(-1)  # (..., C)
    idx = (cdf < u * cdf[..., -1:]).sum(-1, keepdim=True).clamp_max(p.shape[-1] - 1)
    return torch.zeros_like(p).scatter_(-1, idx, 1.0)


def joint_statistics(x: Tensor, y: Tensor, h: Tensor) -> dict[str, Tensor]:
    r"""Batch means of ``-dE/d theta``: ``<x h^T>, <x>, <h>, <e_y h^T>, <e_y>`` keyed by name.

    $$
    \left\langle -\frac{\partial E}{\partial \theta} \right\rangle = \left(\langle x
    h^\top \rangle, \langle x \rangle, \langle h \rangle, \langle e_y h^\top \rangle,
    \langle e_y \rangle\right) \text{ for } \theta = (W, b, c, U, d)
    $$
    """
    n = x.shape[-2]
    return {
        "W": x.transpose(-1, -2) @ h / n,  # (*M, D, H)
        "b": x.mean(-2),  # (*M, D)
        "c": h.mean(-2),  # (*M, H)
        "U": y.transpose(-1, -2) @ h / n,  # (*M, C, H)
        "d": y.mean(-2),  # (*M, C)
    }


def discriminative_gradient(
    x: Tensor,
    y: Tensor,
    W: Tensor,
    c: Tensor,
    U: Tensor,
    d: Tensor,
    *,
    return_log_proba: bool = False,
):
    r"""The exact gradient of ``mean_batch log p(y | x)`` in closed form (ascent direction).

    $$
    a_{y^*} = \mathbb{1}[y^* = y] - p(y^* \mid x), \quad
    g_j = \sum_{y^*} a_{y^*} \sigma(o_{y^*j}(x)), \quad
    \Delta W_{ij} = \langle x_i g_j \rangle, \quad \Delta c_j = \langle g_j \rangle, \quad
    \Delta U_{y^*j} = \langle a_{y^*} \sigma(o_{y^*j}) \rangle, \quad \Delta d_{y^*} =
    \langle a_{y^*} \rangle, \quad \Delta b = 0
    $$

    with $\langle\cdot\rangle$ the batch mean, $x$ = ``x``, $y$ = ``y`` and $o$ from
    :func:`hidden_inputs`.

    Larochelle & Bengio 2008, eq. 3: with ``a_{y*} = 1[y* = y] - p(y*|x)`` and
    ``g_j = sum_{y*} a_{y*} sigmoid(o_y*j(x))``: ``dW = <x g^T>``, ``db = 0``, ``dc = <g>``,
    ``dU[y*] = <a_{y*} sigmoid(o_y*)>``, ``dd = <a>`` (``<.>`` a batch mean). ``y`` holds integer
    labels ``(B,)`` or one-hot / soft targets ``(*M?, B, C)``. With ``return_log_proba`` also
    returns the ``log p(. | x)`` it computed, ``(*M, B, C)``.

    References:
        Larochelle & Bengio, "Classification using discriminative restricted Boltzmann
        machines", ICML 2008, eq. 3.
    """
    o = hidden_inputs(x, W, c, U)  # (*M, B, C, H)
    sig = torch.sigmoid(o)  # (*M, B, C, H)
    logp = torch.log_softmax(_vec(d, 1) + F.softplus(o).sum(-1), -1)  # (*M, B, C)
    t = _onehot(y, U.shape[-2], logp.dtype)  # (*M?, B, C)
    a = t - logp.exp()  # 2008 eq. 3: 1_{y=y*} - p(y*|x)   (*M, B, C)
    g = torch.einsum("...bc,...bch->...bh", a, sig)  # sum_y* a_y* sigmoid(o_y*j)  (*M, B, H)
    n = x.shape[-2]
    grads = {
        "W": x.transpose(-1, -2) @ g / n,  # (*M, D, H)
        "b": torch.zeros(W.shape[:-1], dtype=W.dtype, device=W.device),  # p(y|x) has no b
        "c": g.mean(-2),
        "U": torch.einsum("...bc,...bch->...ch", a, sig) / n,  # (*M, C, H)
        "d": a.mean(-2),
    }
    return (grads, logp) if return_log_proba else grads


def _negative_phase(
    x: Tensor,
    y: Tensor,
    ph: Tensor,
    params: Sequence[Tensor],
    k: int,
    negative_visible: str,
    generator: torch.Generator | None,
) -> tuple[dict[str, Tensor], tuple[Tensor, Tensor]]:
    """``k`` block-Gibbs sweeps ``(x, y) -> h -> (x', y')`` from ``(x, y)`` whose hidden
    probabilities are ``ph``; returns the negative statistics and the final sampled states."""
    check(isinstance(k, int) and k >= 0, "k", k, "an int >= 0")
    check(negative_visible in ("sample", "mean"), "negative_visible", negative_visible,
          "'sample' or 'mean'")  # fmt: skip
    W, b, c, U, d = params
    xm = ym = None
    for step in range(k):
        if step > 0:
            ph = joint_hidden_probs(x, y, W, c, U)
        h = sample_bernoulli(ph, generator)  # (*M, B, H)
        xm, ym = visible_probs(h, W, b), class_probs(h, U, d)  # p(x|h), p(y|h)
        x, y = sample_bernoulli(xm, generator), sample_onehot(ym, generator)
    if negative_visible == "mean":
        if xm is None or ym is None:  # k == 0: no sweep, so no means
            raise ValueError(
                f"k={k!r} is invalid: expected an int >= 1 with negative_visible='mean'"
            )
        xn, yn = xm, ym
    else:
        xn, yn = x, y
    ph_neg = joint_hidden_probs(xn, yn, W, c, U)  # Rao-Blackwellized negative statistics
    return joint_statistics(xn, yn, ph_neg), (x, y)


def generative_gradient(
    x: Tensor,
    y: Tensor,
    W: Tensor,
    b: Tensor,
    c: Tensor,
    U: Tensor,
    d: Tensor,
    *,
    k: int = 1,
    chains: tuple[Tensor, Tensor] | None = None,
    negative_visible: str = "sample",
    generator: torch.Generator | None = None,
) -> tuple[dict[str, Tensor], tuple[Tensor, Tensor]]:
    r"""CD-k / PCD estimate of the gradient of ``mean_batch log p(y, x)`` (ascent direction).

    $$
    \frac{\partial \log p(y, x)}{\partial \theta} \approx \left\langle
    -\frac{\partial E}{\partial \theta} \right\rangle_{\text{data}} - \left\langle
    -\frac{\partial E}{\partial \theta} \right\rangle_{k}
    $$

    the first mean over the batch $(x, y)$ with $h$ given by $p(h \mid x, y)$, the second over
    the states after $k$ = ``k`` sweeps $(x, y) \to h \to (x', y')$ of the joint chain
    (:func:`joint_statistics`).

    ``<-dE/d theta>_{x, y ~ data, h ~ p(h|x,y)} - <-dE/d theta>_{model}`` with hidden
    *probabilities* in both phases; the negative phase runs ``k`` sweeps of the joint chain from
    the data (CD-k, ``chains=None``) or from the persistent states ``chains = (x, y)`` (PCD,
    Tieleman 2008). Negative visibles are the sampled states (``"sample"``) or their means
    ``p(x|h), p(y|h)`` (``"mean"``). Returns the gradient and the chains' final states.

    References:
        Larochelle & Bengio, ICML 2008, Sec. 2; Hinton, "Training products of experts by
        minimizing contrastive divergence", Neural Computation 14(8), 2002; Tieleman, ICML 2008.
    """
    params = (W, b, c, U, d)
    y = _onehot(y, U.shape[-2], x.dtype)
    ph0 = joint_hidden_probs(x, y, W, c, U)  # positive phase (*M, B, H)
    pos = joint_statistics(x, y, ph0)
    if chains is None:
        neg, state = _negative_phase(x, y, ph0, params, k, negative_visible, generator)
    else:
        xc, yc = chains
        ph = joint_hidden_probs(xc, yc, W, c, U)
        neg, state = _negative_phase(xc, yc, ph, params, k, negative_visible, generator)
    return {n: pos[n] - neg[n] for n in PARAMS}, state


def unlabeled_gradient(
    x: Tensor,
    W: Tensor,
    b: Tensor,
    c: Tensor,
    U: Tensor,
    d: Tensor,
    *,
    positive: str = "sample",
    k: int = 1,
    chains: tuple[Tensor, Tensor] | None = None,
    negative_visible: str = "sample",
    generator: torch.Generator | None = None,
) -> tuple[dict[str, Tensor], tuple[Tensor, Tensor]]:
    r"""CD estimate of the gradient of ``mean_batch log p(x)`` for unlabeled ``x`` (ascent).

    $$
    \frac{\partial \log p(x)}{\partial \theta} = \mathbb{E}_{p(y, h \mid x)}\left[
    -\frac{\partial E}{\partial \theta}\right] - \mathbb{E}_{p(y, x, h)}\left[
    -\frac{\partial E}{\partial \theta}\right]
    $$

    ``d log p(x) / d theta = E_{p(y,h|x)}[-dE/d theta] - E_{p(y,x,h)}[-dE/d theta]``. Positive
    phase: a label ``y ~ p(y | x)`` (exact posterior) and ``h`` probabilities given ``(x, y)``
    (``positive="sample"``, Larochelle & Bengio 2008 Sec. 5), or the exact expectation over
    ``y``: ``<x (sum_y p(y|x) sigmoid(o_y))^T>``, ``<p(y|x) sigmoid(o_y)>``, ... (``"expected"``).
    Negative phase as :func:`generative_gradient`, the CD chain starting at ``(x, y_sampled)``.

    Note:
        ``positive="expected"`` (the exact expectation over $y$ in the positive phase) is a
        Rao-Blackwellized variant of ours; the paper samples $y$.

    References:
        Larochelle & Bengio, ICML 2008, Sec. 5; Larochelle et al., JMLR 13, 2012, Sec. 3.3.
    """
    check(positive in ("sample", "expected"), "positive", positive, "'sample' or 'expected'")
    params = (W, b, c, U, d)
    o = hidden_inputs(x, W, c, U)  # (*M, B, C, H)
    sig = torch.sigmoid(o)
    p = torch.softmax(_vec(d, 1) + F.softplus(o).sum(-1), -1)  # exact p(y|x)  (*M, B, C)
    ys = sample_onehot(p, generator)  # y ~ p(y|x)  (*M, B, C)
    ph = torch.einsum("...bc,...bch->...bh", ys, sig)  # p(h | x, y_sampled)  (*M, B, H)
    if positive == "sample":
        pos = joint_statistics(x, ys, ph)
    else:  # E_{y ~ p(y|x)} of the positive statistics, exactly
        n = x.shape[-2]
        mh = torch.einsum("...bc,...bch->...bh", p, sig)  # E[h | x]  (*M, B, H)
        pos = {
            "W": x.transpose(-1, -2) @ mh / n,
            "b": x.mean(-2),
            "c": mh.mean(-2),
            "U": torch.einsum("...bc,...bch->...ch", p, sig) / n,
            "d": p.mean(-2),
        }
    if chains is None:
        neg, state = _negative_phase(x, ys, ph, params, k, negative_visible, generator)
    else:
        xc, yc = chains
        phc = joint_hidden_probs(xc, yc, W, c, U)
        neg, state = _negative_phase(xc, yc, phc, params, k, negative_visible, generator)
    return {n: pos[n] - neg[n] for n in PARAMS}, state
