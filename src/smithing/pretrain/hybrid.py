"""Classification RBMs trained generatively, discriminatively, hybrid and semi-supervised; a deep
hybrid stack trained in a single stage.

**The classification RBM** (Larochelle & Bengio, "Classification using discriminative restricted
Boltzmann machines", ICML 2008; Larochelle, Mandel, Pascanu & Bengio, "Learning algorithms for
the classification restricted Boltzmann machine", JMLR 13, 2012) is a joint model of binary
inputs ``x in {0, 1}^D`` (or probabilities in [0, 1]), a one-hot label ``e_y`` of ``C`` classes
and binary hidden units ``h in {0, 1}^H``::

    E(y, x, h) = -h^T W x - b^T x - c^T h - d^T e_y - h^T U e_y
    p(y, x, h) = exp(-E(y, x, h)) / Z

Layout here (as in :mod:`smithing.pretrain.rbm`): ``W (D, H)`` is the paper's ``W`` transposed
(``x^T W h``), ``U (C, H)`` the paper's ``U`` transposed (row ``U[y]`` is the paper's column
``U_{.y}``), ``b (D,)``, ``c (H,)``, ``d (C,)``. Conditionals::

    p(h_j = 1 | x, y) = sigmoid(c_j + U[y, j] + (x W)_j)
    p(x_i = 1 | h)    = sigmoid(b_i + (W h)_i)            p(y | h) = softmax_y(d_y + U[y] . h)

The hidden units sum out in closed form, so the class posterior is exact (2008, eq. 2)::

    o_yj(x)  = c_j + U[y, j] + (x W)_j
    p(y | x) = exp(d_y + sum_j softplus(o_yj(x))) / sum_y* exp(d_y* + sum_j softplus(o_y*j(x)))

computed here for all classes at once from a ``(batch, C, H)`` tensor ``o`` (no loop over
classes). Its log-likelihood gradient is also closed form (2008, eq. 3; 2012 eq. 5)::

    d log p(y|x) / d theta = sum_j sigmoid(o_yj) d o_yj / d theta
                             - sum_{j, y*} sigmoid(o_y*j) p(y*|x) d o_y*j / d theta

i.e. with the coefficient ``a_{y*} = 1[y* = y] - p(y*|x)``: ``dd_{y*} = a_{y*}``,
``dU[y*, j] = a_{y*} sigmoid(o_y*j)``, ``dc_j = g_j = sum_{y*} a_{y*} sigmoid(o_y*j)``,
``dW[i, j] = x_i g_j`` and ``db = 0`` (:func:`discriminative_gradient`).

**Training objectives** (all maximized by stochastic gradient *ascent*, gradients averaged over
the mini-batch; the paper states them as negative log-likelihoods to minimize):

* ``generative``: ``L_gen = sum log p(y, x)``, gradient ``<-dE/d theta>_data - <-dE/d theta>_model``
  with the model expectation estimated by CD-k or PCD on the joint chain
  ``(x, y) -> h -> (x', y')`` (:func:`generative_gradient`);
* ``discriminative``: ``L_disc = sum log p(y | x)``, exact gradient above;
* ``hybrid``: ``L_hybrid = L_disc + alpha L_gen`` (2008, Sec. 4; 2012 eq. 9), the generative
  part estimated by CD; ``alpha = 0`` is the discriminative objective (the CD chain still runs
  and its contribution is multiplied by 0, so the parameters are bit-identical);
* **semi-supervised** (2008 Sec. 5; 2012 Sec. 3.3): with
  unlabeled inputs ``D_u``, ``L_semi = L_train + beta sum_{x in D_u} log p(x)``, ``L_train``
  any of the three above. The gradient of ``log p(x) = log sum_y p(y, x)`` is
  ``E_{p(y, h | x)}[-dE/d theta] - E_{p(y, x, h)}[-dE/d theta]``: estimated by CD with the
  positive-phase label *sampled* from the exact ``p(y | x)`` (``unlabeled_positive="sample"``,
  the paper's estimator), or with the positive phase's exact expectation over ``y ~ p(y|x)``
  (``"expected"``, a Rao-Blackwellized variant of ours); the negative chain starts at
  ``(x, y_sampled)`` (CD) or continues the persistent chains (PCD: the model expectation of
  ``log p(x)`` and ``log p(x, y)`` is the same, so the chains are shared). Each update takes
  one labeled and one unlabeled mini-batch and adds ``beta`` times the unlabeled mini-batch's
  mean gradient to the labeled one's.

Prediction is always the exact ``argmax_y p(y | x)``. Equation and section numbers cited here
are as we recall them from the papers (not checked against their text); the formulas are
checked by the tests (brute-force enumeration, autograd).

**The deep hybrid stack** (:class:`DeepHybridRBM`) follows the idea of Ororbia, Giles & Reitter's
stacked hybrid Boltzmann models ("Online semi-supervised learning with deep hybrid Boltzmann
machines and denoising autoencoders", arXiv 1511.06964, 2015, and the "Stacked Boltzmann
Experts Network" of their "Deep hybrid models" work): every layer is a classification RBM
with its own label units, trained with the hybrid (and, with unlabeled data, semi-supervised)
signal; the layer-``l`` input is the layer below's label-free mean code
``E[h | x] = sum_y p(y|x) sigmoid(o_y(x))`` (exact under the layer's model); all layers are
updated at every step from the same mini-batch, in ONE stage (no pretraining phase, no
fine-tuning phase). What we implement and where we simplify (we did not have the papers'
text to check against): the layers send no top-down signals to each other (any joint
inference across layers that the DHBM performs is left out: each layer's gradient is local and
no gradient crosses layers), the propagated code is ``E[h | x]`` for labeled and unlabeled
examples alike, and the prediction is the top layer's ``p(y | h)`` (``combine="top"``) or the
equally weighted mean of every layer's ``p(y | .)`` (``combine="mean"``, standing in for
their combination of the layer experts' predictions).

Randomness: the batch order comes from a generator seeded by one draw of ``generator`` at the
start; CD sampling draws from ``generator`` itself. So objectives that sample (generative,
hybrid) and those that do not (discriminative) see the same batch order for the same seed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smithing._registry import check
from smithing.checkpoint import (
    Checkpointer,
    as_checkpointer,
    check_signature,
    rng_state,
    set_rng_state,
)
from smithing.pretrain.rbm import sample_bernoulli, visible_probs

__all__ = [
    "OBJECTIVES",
    "ClassRBM",
    "ClassificationRBM",
    "DeepHybridRBM",
    "HybridTraining",
    "class_logits",
    "chunked",
    "class_probs",
    "discriminative_gradient",
    "exact_log_z",
    "generative_gradient",
    "hidden_inputs",
    "joint_energy",
    "joint_free_energy",
    "joint_hidden_probs",
    "joint_statistics",
    "log_proba",
    "marginal_hidden_probs",
    "sample_onehot",
    "train_class_rbm",
    "train_deep_hybrid",
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
    """``o[n, y, j] = c_j + U[y, j] + (x_n W)_j`` for every class at once: ``(*M, B, C, H)``.

    Shapes: ``x (*M?, B, D)``, ``W (*M, D, H)``, ``c (*M, H)``, ``U (*M, C, H)``; an optional
    leading members axis ``M`` on the parameters (a members-free ``x`` is shared by all).
    """
    xw = x @ W  # (*M, B, H)
    return xw.unsqueeze(-2) + U.unsqueeze(-3) + _vec(c, 2)  # (*M, B, C, H)


def class_logits(x: Tensor, W: Tensor, c: Tensor, U: Tensor, d: Tensor) -> Tensor:
    """``log p(y | x)`` up to a constant: ``d_y + sum_j softplus(o_yj(x))``; ``(*M, B, C)``.

    Larochelle & Bengio 2008, eq. 2 (the ``b^T x`` term cancels in ``p(y | x)``).
    """
    o = hidden_inputs(x, W, c, U)  # (*M, B, C, H)
    return _vec(d, 1) + F.softplus(o).sum(-1)  # 2008 eq. 2, numerator's log


def log_proba(x: Tensor, W: Tensor, c: Tensor, U: Tensor, d: Tensor) -> Tensor:
    """The exact ``log p(y | x)`` for every class, ``(*M, B, C)`` (log-softmax of the logits)."""
    return torch.log_softmax(class_logits(x, W, c, U, d), -1)


def joint_hidden_probs(x: Tensor, y: Tensor, W: Tensor, c: Tensor, U: Tensor) -> Tensor:
    """``p(h_j = 1 | x, y) = sigmoid(c_j + U[y, j] + (x W)_j)``; ``y`` one-hot ``(*M?, B, C)``."""
    return torch.sigmoid(x @ W + y @ U + _vec(c, 1))  # (*M, B, H)


def class_probs(h: Tensor, U: Tensor, d: Tensor) -> Tensor:
    """``p(y | h) = softmax_y(d_y + U[y] . h)``; ``(*M, B, C)``."""
    return torch.softmax(h @ U.transpose(-1, -2) + _vec(d, 1), -1)


def marginal_hidden_probs(x: Tensor, W: Tensor, c: Tensor, U: Tensor, d: Tensor) -> Tensor:
    """The label-free mean code ``E[h | x] = sum_y p(y | x) sigmoid(o_y(x))``; ``(*M, B, H)``."""
    o = hidden_inputs(x, W, c, U)  # (*M, B, C, H)
    p = torch.softmax(_vec(d, 1) + F.softplus(o).sum(-1), -1)  # (*M, B, C)
    return torch.einsum("...bc,...bch->...bh", p, torch.sigmoid(o))


def joint_energy(
    x: Tensor, y: Tensor, h: Tensor, W: Tensor, b: Tensor, c: Tensor, U: Tensor, d: Tensor
) -> Tensor:
    """``E(y, x, h) = -h^T W x - b^T x - c^T h - d^T e_y - h^T U e_y``; ``(*M, B)``.

    ``y`` one-hot ``(*M?, B, C)`` (2008, eq. 1 in our layout).
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
    """``F(y, x) = -b^T x - d_y - sum_j softplus(c_j + U[y, j] + (x W)_j)``; ``(*M, B)``.

    ``p(y, x) = exp(-F(y, x)) / Z``; ``y`` one-hot ``(*M?, B, C)``.
    """
    pre = x @ W + y @ U + _vec(c, 1)  # (*M, B, H)
    return -(x * _vec(b, 1)).sum(-1) - (y * _vec(d, 1)).sum(-1) - F.softplus(pre).sum(-1)


def exact_log_z(W: Tensor, b: Tensor, c: Tensor, U: Tensor, d: Tensor) -> Tensor:
    """``log Z`` by enumerating the ``2^H`` hidden states and the ``C`` classes (``H <= 20``).

    Summing ``x`` out: ``log Z = logsumexp_{h, y} [d_y + c^T h + U[y] . h
    + sum_i softplus(b_i + (W h)_i)]``. One model (no members axis); for tests and tiny models.
    """
    check(W.dim() == 2, "W.dim()", W.dim(), "2 (one model, no members axis)")
    H = W.shape[-1]
    check(H <= 20, "n_hidden", H, "at most 20 for exact enumeration")
    codes = torch.arange(2**H, device=W.device)
    hs = ((codes.unsqueeze(-1) >> torch.arange(H, device=W.device)) & 1).to(W.dtype)  # (2^H, H)
    base = hs @ c + F.softplus(hs @ W.transpose(0, 1) + b).sum(-1)  # (2^H,)
    total = base.unsqueeze(-1) + hs @ U.transpose(0, 1) + d  # (2^H, C)
    return torch.logsumexp(total.reshape(-1), 0)


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
    """Batch means of ``-dE/d theta``: ``<x h^T>, <x>, <h>, <e_y h^T>, <e_y>`` keyed by name."""
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
    """The exact gradient of ``mean_batch log p(y | x)`` in closed form (ascent direction).

    Larochelle & Bengio 2008, eq. 3: with ``a_{y*} = 1[y* = y] - p(y*|x)`` and
    ``g_j = sum_{y*} a_{y*} sigmoid(o_y*j(x))``: ``dW = <x g^T>``, ``db = 0``, ``dc = <g>``,
    ``dU[y*] = <a_{y*} sigmoid(o_y*)>``, ``dd = <a>`` (``<.>`` a batch mean). ``y`` holds integer
    labels ``(B,)`` or one-hot / soft targets ``(*M?, B, C)``. With ``return_log_proba`` also
    returns the ``log p(. | x)`` it computed, ``(*M, B, C)``.
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
    W, b, c, U, d = params
    xm = ym = None
    for step in range(k):
        if step > 0:
            ph = joint_hidden_probs(x, y, W, c, U)
        h = sample_bernoulli(ph, generator)  # (*M, B, H)
        xm, ym = visible_probs(h, W, b), class_probs(h, U, d)  # p(x|h), p(y|h)
        x, y = sample_bernoulli(xm, generator), sample_onehot(ym, generator)
    xn, yn = (xm, ym) if negative_visible == "mean" else (x, y)
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
    """CD-k / PCD estimate of the gradient of ``mean_batch log p(y, x)`` (ascent direction).

    ``<-dE/d theta>_{x, y ~ data, h ~ p(h|x,y)} - <-dE/d theta>_{model}`` with hidden
    *probabilities* in both phases; the negative phase runs ``k`` sweeps of the joint chain from
    the data (CD-k, ``chains=None``) or from the persistent states ``chains = (x, y)`` (PCD,
    Tieleman 2008). Negative visibles are the sampled states (``"sample"``) or their means
    ``p(x|h), p(y|h)`` (``"mean"``). Returns the gradient and the chains' final states.
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
    """CD estimate of the gradient of ``mean_batch log p(x)`` for unlabeled ``x`` (ascent).

    ``d log p(x) / d theta = E_{p(y,h|x)}[-dE/d theta] - E_{p(y,x,h)}[-dE/d theta]``. Positive
    phase: a label ``y ~ p(y | x)`` (exact posterior) and ``h`` probabilities given ``(x, y)``
    (``positive="sample"``, Larochelle & Bengio 2008 Sec. 5), or the exact expectation over
    ``y``: ``<x (sum_y p(y|x) sigmoid(o_y))^T>``, ``<p(y|x) sigmoid(o_y)>``, ... (``"expected"``).
    Negative phase as :func:`generative_gradient`, the CD chain starting at ``(x, y_sampled)``.
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


# ------------------------------------------------------------------ modules


class ClassRBM(nn.Module):
    """The parameters of a classification RBM: ``W (*M, D, H)``, ``b (*M, D)``, ``c (*M, H)``,
    ``U (*M, C, H)``, ``d (*M, C)`` (see the module docstring for the energy and layout).

    Initialization: ``W ~ U(-a, a)`` with ``a = init_scale`` or ``1 / sqrt(max(D, H))``,
    ``U ~ U(-a_U, a_U)`` with ``a_U = init_scale`` or ``1 / sqrt(max(C, H))``, zero biases (the
    ``max(rows, cols)^-1/2`` rule of Larochelle's code, as we recall it: unverified).
    ``members`` adds a leading members axis (the pure functions accept it; the trainers here
    train one model). Holds parameters only: training is :func:`train_class_rbm`.
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        n_classes: int,
        *,
        members: int | None = None,
        init_scale: float | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, v, lo in (("n_visible", n_visible, 1), ("n_hidden", n_hidden, 1)):
            check(isinstance(v, int) and v >= lo, name, v, "a positive int")
        check(isinstance(n_classes, int) and n_classes >= 2, "n_classes", n_classes, "an int >= 2")
        check(
            members is None or (isinstance(members, int) and members > 0),
            "members",
            members,
            "None or a positive int",
        )
        check(
            init_scale is None or init_scale >= 0,
            "init_scale",
            init_scale,
            "None or a non-negative number",
        )
        lead = () if members is None else (members,)
        kw = {"device": device, "dtype": dtype or torch.get_default_dtype()}
        a_w = init_scale if init_scale is not None else max(n_visible, n_hidden) ** -0.5
        a_u = init_scale if init_scale is not None else max(n_classes, n_hidden) ** -0.5
        W = (torch.rand((*lead, n_visible, n_hidden), generator=generator, **kw) * 2 - 1) * a_w
        U = (torch.rand((*lead, n_classes, n_hidden), generator=generator, **kw) * 2 - 1) * a_u
        self.W = nn.Parameter(W)  # (*M, D, H)
        self.b = nn.Parameter(torch.zeros((*lead, n_visible), **kw))  # visible biases
        self.c = nn.Parameter(torch.zeros((*lead, n_hidden), **kw))  # hidden biases
        self.U = nn.Parameter(U)  # (*M, C, H)
        self.d = nn.Parameter(torch.zeros((*lead, n_classes), **kw))  # class biases

    @property
    def n_visible(self) -> int:
        return self.W.shape[-2]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[-1]

    @property
    def n_classes(self) -> int:
        return self.U.shape[-2]

    @property
    def members(self) -> int | None:
        return self.W.shape[0] if self.W.dim() == 3 else None

    def params(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(W, b, c, U, d)``, the argument order of the pure functions."""
        return self.W, self.b, self.c, self.U, self.d

    def forward(self, x: Tensor) -> Tensor:
        """``log p(y | x)`` for every class, ``(*M, B, C)``."""
        return self.log_proba(x)

    def class_logits(self, x: Tensor) -> Tensor:
        return class_logits(x.to(self.W.dtype), self.W, self.c, self.U, self.d)

    def log_proba(self, x: Tensor) -> Tensor:
        return log_proba(x.to(self.W.dtype), self.W, self.c, self.U, self.d)

    def predict_proba(self, x: Tensor) -> Tensor:
        return self.log_proba(x).exp()

    def predict(self, x: Tensor) -> Tensor:
        return self.class_logits(x).argmax(-1)

    def hidden_probs(self, x: Tensor, y: Tensor) -> Tensor:
        """``p(h = 1 | x, y)`` for labels ``y`` (ints or one-hot)."""
        y = _onehot(y, self.n_classes, self.W.dtype)
        return joint_hidden_probs(x.to(self.W.dtype), y, self.W, self.c, self.U)

    def marginal_hidden_probs(self, x: Tensor) -> Tensor:
        """``E[h | x] = sum_y p(y | x) p(h = 1 | x, y)``, the label-free code."""
        return marginal_hidden_probs(x.to(self.W.dtype), self.W, self.c, self.U, self.d)

    def visible_mean(self, h: Tensor) -> Tensor:
        return visible_probs(h, self.W, self.b)

    def class_probs(self, h: Tensor) -> Tensor:
        return class_probs(h, self.U, self.d)

    def energy(self, x: Tensor, y: Tensor, h: Tensor) -> Tensor:
        y = _onehot(y, self.n_classes, self.W.dtype)
        return joint_energy(x, y, h, *self.params())

    def free_energy(self, x: Tensor, y: Tensor) -> Tensor:
        y = _onehot(y, self.n_classes, self.W.dtype)
        return joint_free_energy(x.to(self.W.dtype), y, *self.params())

    @torch.no_grad()
    def init_visible_bias_(self, x: Tensor, eps: float = 1e-3) -> ClassRBM:
        """``b_i = log(p_i / (1 - p_i))`` from the mean ``p_i`` of ``x`` (clamped to
        ``[eps, 1 - eps]``; Hinton's guide, Sec. 8)."""
        p = x.to(self.W.dtype).mean(-2).clamp(eps, 1 - eps)
        self.b.copy_(torch.log(p / (1 - p)).expand_as(self.b))
        return self


class DeepHybridRBM(nn.Module):
    """A stack of classification RBMs ``sizes = [D, H_1, ..., H_L]``, each with ``C`` label
    units, trained in one stage by :func:`train_deep_hybrid` (see the module docstring).

    Layer ``l`` sees the layer below's label-free code ``E[h_{l-1} | .]``; ``log_proba`` is the
    top layer's ``log p(y | h_{L-1})`` (``combine="top"``) or the log of the mean of every
    layer's ``p(y | .)`` (``"mean"``).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        n_classes: int,
        *,
        init_scale: float | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        sizes = list(sizes)
        check(
            len(sizes) >= 2 and all(isinstance(s, int) and s > 0 for s in sizes),
            "sizes",
            sizes,
            "at least two positive ints [n_visible, n_hidden_1, ...]",
        )
        self.layers = nn.ModuleList(
            ClassRBM(
                a,
                h,
                n_classes,
                init_scale=init_scale,
                generator=generator,
                device=device,
                dtype=dtype,
            )
            for a, h in zip(sizes[:-1], sizes[1:])
        )

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.layers[0].n_visible, *(layer.n_hidden for layer in self.layers))

    @property
    def n_classes(self) -> int:
        return self.layers[0].n_classes

    def upward(self, x: Tensor) -> list[Tensor]:
        """Every layer's input: ``[x, E[h_1 | x], E[h_2 | h_1], ...]`` (L entries)."""
        out = [x.to(self.layers[0].W.dtype)]
        for layer in self.layers[:-1]:
            out.append(layer.marginal_hidden_probs(out[-1]))
        return out

    def layer_log_proba(self, x: Tensor) -> list[Tensor]:
        """Each layer's ``log p(y | its input)``, bottom to top, ``L x (B, C)``."""
        return [layer.log_proba(v) for layer, v in zip(self.layers, self.upward(x))]

    def log_proba(self, x: Tensor, combine: str = "top") -> Tensor:
        check(combine in ("top", "mean"), "combine", combine, "'top' or 'mean'")
        if combine == "top":
            return self.layers[-1].log_proba(self.upward(x)[-1])
        lps = torch.stack(self.layer_log_proba(x))  # (L, B, C)
        return torch.logsumexp(lps, 0) - math.log(lps.shape[0])  # log mean_l p_l(y|.)

    def forward(self, x: Tensor) -> Tensor:
        return self.log_proba(x)

    def predict(self, x: Tensor, combine: str = "top") -> Tensor:
        return self.log_proba(x, combine).argmax(-1)


# ------------------------------------------------------------------ training


@dataclass(frozen=True)
class HybridTraining:
    """The settings of :func:`train_class_rbm` and :func:`train_deep_hybrid`.

    Objective (see the module docstring): ``objective`` is ``"generative"`` (``log p(y, x)`` by
    CD-k / PCD), ``"discriminative"`` (exact ``log p(y | x)``) or ``"hybrid"``
    (``log p(y | x) + alpha log p(y, x)``); unlabeled inputs add ``beta log p(x)``
    (semi-supervised; ``unlabeled_positive`` picks the positive-phase estimator, ``"sample"``
    or ``"expected"``). The update is SGD on the batch-mean gradient ``g`` with
    ``torch.optim.SGD(lr=1, momentum)`` fed ``.grad = -lr * lr_schedule(epoch) * g`` (the
    delta form of :func:`smithing.pretrain.rbm.train_rbm`); ``weight_decay`` is an L2 penalty
    on ``W`` and ``U``. ``lr`` may be one rate per layer (deep model).

    Batches: every step takes ``batch_size`` labeled examples and, given unlabeled data,
    ``unlabeled_batch_size`` (default ``batch_size``) unlabeled ones, each from its own stream
    of concatenated random permutations; an epoch is ``steps_per_epoch`` steps (default: one
    pass over the larger set). Without unlabeled data and with ``n`` a multiple of
    ``batch_size`` an epoch is one ordinary pass over a fresh permutation.

    Negative phase: ``k`` Gibbs sweeps from the data (``method="cd"``) or of ``n_chains``
    (default ``batch_size``) persistent joint chains per layer (``"pcd"``, started at random
    labeled examples, shared by the generative and unlabeled terms); negative visibles are
    the sampled states or their means (``negative_visible``).

    Model selection: given validation data, the parameters of the epoch with the lowest
    validation error (ties: loss) are restored at the end (``restore_best``);
    ``early_stopping_patience`` stops after that many epochs without improvement. The
    per-epoch metrics use the first ``monitor_size`` labeled training examples.
    """

    objective: str = "hybrid"
    alpha: float = 0.01
    beta: float = 0.1
    epochs: int = 10
    batch_size: int = 20
    unlabeled_batch_size: int | None = None
    steps_per_epoch: int | None = None
    lr: float | tuple[float, ...] = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    method: str = "cd"
    k: int = 1
    n_chains: int | None = None
    negative_visible: str = "sample"
    unlabeled_positive: str = "sample"
    early_stopping_patience: int | None = None
    restore_best: bool = True
    monitor_size: int = 1000

    def __post_init__(self) -> None:
        check(
            self.objective in OBJECTIVES, "objective", self.objective, f"one of {tuple(OBJECTIVES)}"
        )
        for name in ("alpha", "beta", "weight_decay"):
            v = getattr(self, name)
            check(isinstance(v, (int, float)) and v >= 0, name, v, "a non-negative number")
        for name in ("epochs", "batch_size", "k", "monitor_size"):
            v, lo = getattr(self, name), 0 if name == "epochs" else 1
            check(isinstance(v, int) and v >= lo, name, v, f"an int >= {lo}")
        for name in ("unlabeled_batch_size", "steps_per_epoch", "n_chains"):
            v = getattr(self, name)
            check(v is None or (isinstance(v, int) and v > 0), name, v, "None or a positive int")
        p = self.early_stopping_patience
        check(
            p is None or (isinstance(p, int) and p >= 0),
            "early_stopping_patience",
            p,
            "None or an int >= 0",
        )
        lrs = (self.lr,) if isinstance(self.lr, (int, float)) else tuple(self.lr)
        check(
            len(lrs) > 0 and all(v > 0 and math.isfinite(v) for v in lrs),
            "lr",
            self.lr,
            "a positive number or a sequence of them (one per layer)",
        )
        check(0.0 <= self.momentum < 1.0, "momentum", self.momentum, "a number in [0, 1)")
        check(self.method in ("cd", "pcd"), "method", self.method, "'cd' or 'pcd'")
        for name in ("negative_visible", "unlabeled_positive"):
            allowed = ("sample", "mean") if name == "negative_visible" else ("sample", "expected")
            v = getattr(self, name)
            check(v in allowed, name, v, f"one of {allowed}")

    @classmethod
    def from_options(cls, options: dict) -> HybridTraining:
        """``HybridTraining(**options)`` with an unknown name reported as a ValueError."""
        valid = tuple(cls.__dataclass_fields__)
        for name in options:
            check(name in valid, "option", name, f"one of {valid}")
        return cls(**options)


class _Stream:
    """Mini-batch indices drawn from a stream of concatenated random permutations of
    ``range(n)``: every batch has ``size`` indices, and a new permutation starts when the
    current one runs out (a batch may straddle two permutations)."""

    def __init__(self, n: int, size: int, generator: torch.Generator, device) -> None:
        self.n, self.size, self.gen, self.device = n, size, generator, device
        self.buf = torch.empty(0, dtype=torch.long)

    def take(self) -> Tensor:
        while self.buf.numel() < self.size:
            self.buf = torch.cat([self.buf, torch.randperm(self.n, generator=self.gen)])
        out, self.buf = self.buf[: self.size], self.buf[self.size :]
        return out.to(self.device)


def _draw_seed(generator: torch.Generator | None) -> int:
    if generator is None:
        return int(torch.randint(2**62, (1,)))
    return int(torch.randint(2**62, (1,), generator=generator, device=generator.device))


@torch.no_grad()
def _eval(log_proba_fn, x: Tensor, y: Tensor) -> tuple[float, float]:
    lp = chunked(log_proba_fn, x)  # (n, C)
    nll = float(-lp.gather(-1, y.long().unsqueeze(-1)).mean())
    return nll, float((lp.argmax(-1) != y).double().mean())


def chunked(fn: Callable[[Tensor], Tensor], x: Tensor, rows: int = 512) -> Tensor:
    """``fn(x)`` computed ``rows`` examples at a time and concatenated (the ``(rows, C, H)``
    tensor of :func:`hidden_inputs` stays small for wide models and large splits)."""
    return torch.cat([fn(x[i : i + rows]) for i in range(0, x.shape[0], rows)], 0)


def _check_xy(x: Tensor, y: Tensor, n_visible: int, n_classes: int, name: str) -> None:
    check(x.dim() == 2 and x.shape[-1] == n_visible, f"{name}.shape", tuple(x.shape),
          f"(n, {n_visible})")  # fmt: skip
    check(
        y.dim() == 1 and y.shape[0] == x.shape[0] and not y.is_floating_point(),
        f"{name} labels",
        tuple(y.shape),
        f"integer labels of shape ({x.shape[0]},)",
    )
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        check(lo >= 0 and hi < n_classes, f"{name} labels", (lo, hi), f"in [0, {n_classes})")


def _layer_gradient(layer, inp, yb, inp_u, cfg: HybridTraining, chain, generator):
    """One layer's ascent direction ``w_disc g_disc + w_gen g_gen + beta g_unlabeled - decay``;
    returns it, the batch's ``log p(y|x)`` and the (possibly advanced) persistent chain."""
    W, b, c, U, d = layer.params()
    w_disc, w_gen = OBJECTIVES[cfg.objective](cfg.alpha)
    grad, logp = discriminative_gradient(inp, yb, W, c, U, d, return_log_proba=True)
    if w_disc != 1.0:
        grad = {nm: w_disc * grad[nm] for nm in PARAMS}
    kw = {"k": cfg.k, "negative_visible": cfg.negative_visible, "generator": generator}
    if cfg.objective != "discriminative":  # L_disc + alpha L_gen (2008 Sec. 4); runs at alpha=0
        gg, state = generative_gradient(inp, yb, W, b, c, U, d, chains=chain, **kw)
        chain = state if cfg.method == "pcd" else None
        grad = {nm: grad[nm] + w_gen * gg[nm] for nm in PARAMS}
    if inp_u is not None:  # + beta log p(x_u)   (2008 Sec. 5)
        pos = cfg.unlabeled_positive
        gu, state = unlabeled_gradient(inp_u, W, b, c, U, d, positive=pos, chains=chain, **kw)
        chain = state if cfg.method == "pcd" else None
        grad = {nm: grad[nm] + cfg.beta * gu[nm] for nm in PARAMS}
    if cfg.weight_decay:
        grad["W"] = grad["W"] - cfg.weight_decay * W  # L2 on the weights only
        grad["U"] = grad["U"] - cfg.weight_decay * U
    return grad, logp, chain


def _train_layers(
    layers: Sequence[ClassRBM],
    log_proba_fn: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    cfg: HybridTraining,
    *,
    x_unlabeled: Tensor | None,
    valid: tuple[Tensor, Tensor] | None,
    lr_schedule: Callable[[int], float] | None,
    generator: torch.Generator | None,
    callback: Callable[[int, dict], object] | None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    trainer: str = "train_class_rbm",
    extra_signature: dict | None = None,
) -> dict:
    for layer in layers:
        check(layer.members is None, "members", layer.members, "None (train one model)")
    lrs = [float(cfg.lr)] * len(layers) if isinstance(cfg.lr, (int, float)) else list(cfg.lr)
    check(len(lrs) == len(layers), "lr", cfg.lr, f"one number or {len(layers)} (one per layer)")
    bottom = layers[0]
    dev, dtype, C = bottom.W.device, bottom.W.dtype, bottom.n_classes
    _check_xy(x, y, bottom.n_visible, C, "x")
    check(x.shape[0] > 0, "x.shape", tuple(x.shape), "at least one labeled example")
    x, y = x.to(device=dev, dtype=dtype), y.to(dev)
    xu = None
    if x_unlabeled is not None and x_unlabeled.shape[0] > 0:
        shape = tuple(x_unlabeled.shape)
        ok = x_unlabeled.dim() == 2 and shape[-1] == bottom.n_visible
        check(ok, "x_unlabeled.shape", shape, f"(n, {bottom.n_visible})")
        xu = x_unlabeled.to(device=dev, dtype=dtype)
    if valid is not None:
        _check_xy(valid[0], valid[1], bottom.n_visible, C, "valid")
        valid = (valid[0].to(device=dev, dtype=dtype), valid[1].to(dev))
    ub = cfg.unlabeled_batch_size or cfg.batch_size
    n, nu = x.shape[0], (0 if xu is None else xu.shape[0])
    steps = cfg.steps_per_epoch or max(math.ceil(n / cfg.batch_size), math.ceil(nu / ub))

    # the batch order: its own CPU generator, seeded by one draw of `generator`
    order = torch.Generator().manual_seed(_draw_seed(generator))
    lab = _Stream(n, min(cfg.batch_size, n), order, dev)
    unl = None if xu is None else _Stream(nu, min(ub, nu), order, dev)

    chains: list = [None] * len(layers)  # PCD: one persistent (x, y) chain per layer
    if cfg.method == "pcd":
        idx = torch.randint(n, (cfg.n_chains or cfg.batch_size,), generator=generator, device=dev)
        v, yc = x[idx], _onehot(y[idx], C, dtype)
        for i, layer in enumerate(layers):
            chains[i] = (v.clone(), yc.clone())
            with torch.no_grad():
                v = layer.marginal_hidden_probs(v)

    params = [dict(zip(PARAMS, layer.params())) for layer in layers]
    opt = torch.optim.SGD([{"params": list(p.values())} for p in params], lr=1.0,
                          momentum=cfg.momentum)  # fmt: skip
    mon = (x[: cfg.monitor_size], y[: cfg.monitor_size])
    hist: dict = {"epochs": [], "status": "done", "stop_reason": "max_epochs", "message": ""}
    best_key, best_epoch, best_state, since = None, None, None, 0
    ckpt = as_checkpointer(checkpoint)
    signature = {
        "training": _jsonable(dataclasses.asdict(cfg)),
        "parameters": [
            [f"{i}.{k}", list(v.shape)]
            for i, lay in enumerate(layers)
            for k, v in lay.state_dict().items()
        ],
        "data": [n, nu, None if valid is None else valid[0].shape[0]],
        "steps_per_epoch": steps,
        "generator": generator is not None,
        **(extra_signature or {}),
    }
    first_epoch, begin, finished, elapsed = 1, 0, False, 0.0
    loss_sum = None

    def snapshot(epoch: int, step: int = 0, done: bool = False) -> dict:
        # everything needed to continue with step `step` of epoch `epoch`
        return {
            "trainer": trainer,
            "signature": signature,
            "epoch": epoch,
            "step": step,
            "finished": done,
            "elapsed": time.perf_counter() - t0,
            "loss_sum": loss_sum if step else None,
            "layers": [layer.state_dict() for layer in layers],
            "optimizer": opt.state_dict(),
            "order": order.get_state(),
            "streams": [lab.buf, None if unl is None else unl.buf],
            "chains": chains,
            "generator": None if generator is None else generator.get_state(),
            "rng": rng_state(dev),
            "history": hist,
            "best": [None if best_key is None else list(best_key), best_epoch, best_state, since],
        }

    state = None if ckpt is None else ckpt.load()
    if state is not None:
        check_signature(ckpt, state, trainer, signature)
        with torch.no_grad():
            for layer, s in zip(layers, state["layers"]):
                layer.load_state_dict(s)
        opt.load_state_dict(state["optimizer"])
        order.set_state(state["order"])
        lab.buf = state["streams"][0]
        if unl is not None:
            unl.buf = state["streams"][1]
        chains = [None if c is None else tuple(t.to(dev) for t in c) for c in state["chains"]]
        if generator is not None:
            generator.set_state(state["generator"])
        hist = copy.deepcopy(state["history"])
        key, best_epoch, best_state, since = state["best"]
        best_key = None if key is None else tuple(key)
        if best_state is not None:
            best_state = [{k: v.to(dev) for k, v in s.items()} for s in best_state]
        first_epoch, begin = state["epoch"], state["step"]
        finished, elapsed = state["finished"], state["elapsed"]
        if state["loss_sum"] is not None:
            loss_sum = state["loss_sum"].to(dev)
        set_rng_state(state["rng"])  # last: nothing may draw from the global generators after
    t0 = time.perf_counter() - elapsed
    if ckpt is not None:
        ckpt.start()
    for epoch in range(first_epoch, 0 if finished else cfg.epochs + 1):
        factor = 1.0 if lr_schedule is None else float(lr_schedule(epoch - 1))
        if begin == 0:
            loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        for step in range(begin, steps):
            idx = lab.take()
            xb, yb = x[idx], y[idx]  # (B, D), (B,)
            xub = None if unl is None else xu[unl.take()]  # (Bu, D)
            with torch.no_grad():
                inp, inp_u = xb, xub
                for li, layer in enumerate(layers):
                    grad, logp, chains[li] = _layer_gradient(
                        layer, inp, yb, inp_u, cfg, chains[li], generator
                    )
                    for nm, t in params[li].items():
                        t.grad = -(lrs[li] * factor) * grad[nm]  # SGD descends -g
                    if li < len(layers) - 1:  # the next layer's inputs, before this update
                        inp = layer.marginal_hidden_probs(inp)
                        inp_u = None if inp_u is None else layer.marginal_hidden_probs(inp_u)
                loss_sum -= logp.gather(-1, yb.unsqueeze(-1)).double().sum()  # top layer
            opt.step()
            if ckpt is not None and step + 1 < steps and ckpt.due(batches=step + 1):
                ckpt.save(snapshot(epoch, step + 1))
        begin = 0
        rec = {
            "epoch": epoch,
            "lr": [v * factor for v in lrs] if len(lrs) > 1 else lrs[0] * factor,
            "batch_loss": float(loss_sum) / (steps * lab.size),
        }
        rec["train_loss"], rec["train_error"] = _eval(log_proba_fn, *mon)
        if valid is not None:
            rec["valid_loss"], rec["valid_error"] = _eval(log_proba_fn, *valid)
        rec["seconds"] = time.perf_counter() - t0
        hist["epochs"].append(rec)
        if not all(torch.isfinite(t).all() for p in params for t in p.values()):
            hist["status"] = hist["stop_reason"] = "diverged"
            hist["message"] = f"non-finite parameters in epoch {epoch}"
            break
        stop = callback is not None and bool(callback(epoch, rec))
        if valid is not None:
            key = (rec["valid_error"], rec["valid_loss"])
            if best_key is None or key < best_key:
                best_key, best_epoch, since = key, epoch, 0
                if cfg.restore_best:
                    best_state = [copy.deepcopy(layer.state_dict()) for layer in layers]
            else:
                since += 1
                p = cfg.early_stopping_patience
                if p is not None and since > p:
                    hist["stop_reason"], stop = "patience", True
        if stop:
            if hist["stop_reason"] == "max_epochs":
                hist["stop_reason"] = "callback"
            break
        if ckpt is not None and epoch < cfg.epochs and ckpt.due(epoch_end=True):
            ckpt.save(snapshot(epoch + 1))
    if ckpt is not None and ckpt.save_final and not finished:
        ckpt.save(snapshot(cfg.epochs + 1, done=True))
    opt.zero_grad(set_to_none=True)
    if best_state is not None:
        for layer, state in zip(layers, best_state):
            layer.load_state_dict(state)
    hist["best_epoch"] = best_epoch if best_epoch is not None else len(hist["epochs"])
    hist["steps_per_epoch"] = steps
    hist["seconds"] = time.perf_counter() - t0
    return hist


def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


_RETURNS = """
    Per epoch the history records ``train_loss`` / ``train_error`` (exact ``-log p(y|x)`` and
    error on the first ``monitor_size`` labeled examples), ``valid_loss`` / ``valid_error`` on
    ``valid = (x, y)``, ``batch_loss`` (mean ``-log p(y|x)`` of the top layer over the epoch's
    batches, before each update), ``lr`` and cumulative ``seconds``. ``lr_schedule(epoch)``
    (0-based) scales the learning rate; ``callback(epoch, record)`` returning True stops.
    ``generator`` drives the batch order (through one seed drawn from it) and the sampling:
    same seed, same result. Returns ``{"epochs": [...], "status", "stop_reason",
    "best_epoch", "steps_per_epoch", "seconds", "message"}``; a non-finite parameter ends
    training with ``status="diverged"``.

    ``checkpoint`` (a :class:`~smithing.checkpoint.Checkpointer` or a path) makes the run
    resumable: training continues from the newest valid checkpoint there and saves as its
    policy says (epoch ends, optionally after any step). It holds the parameters, the momentum
    buffers, the persistent chains, the batch streams (their generator and the rest of their
    current permutations), the states of ``generator`` and of the global torch / Python /
    NumPy generators, the model-selection state (best epoch, its parameters, patience), the
    history and the position in the epoch. A resumed run ends bitwise equal (on CPU) to the
    run uninterrupted (``seconds`` aside); a finished run's checkpoint makes a rerun skip
    training.
"""


def train_class_rbm(
    model: ClassRBM,
    x: Tensor,
    y: Tensor,
    *,
    x_unlabeled: Tensor | None = None,
    valid: tuple[Tensor, Tensor] | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, dict], object] | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    **options,
) -> dict:
    """Train a :class:`ClassRBM` in place on inputs ``x (n, D)`` and integer labels ``y (n,)``
    (plus unlabeled ``x_unlabeled (n_u, D)``: semi-supervised); ``options`` are the fields
    of :class:`HybridTraining` (objective, alpha, beta, epochs, batch_size, lr, momentum, ...).
    """
    cfg = HybridTraining.from_options(options)
    return _train_layers([model], model.log_proba, x, y, cfg, x_unlabeled=x_unlabeled,
                         valid=valid, lr_schedule=lr_schedule, generator=generator,
                         callback=callback, checkpoint=checkpoint)  # fmt: skip


def train_deep_hybrid(
    model: DeepHybridRBM,
    x: Tensor,
    y: Tensor,
    *,
    combine: str = "top",
    x_unlabeled: Tensor | None = None,
    valid: tuple[Tensor, Tensor] | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, dict], object] | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    **options,
) -> dict:
    """Train every layer of a :class:`DeepHybridRBM` at once, in a single stage.

    Each step: the mini-batch goes up the stack (layer ``l``'s input is layer ``l-1``'s
    ``E[h | .]`` under the parameters *before* this step's update), every layer computes its
    own objective's gradient (:class:`HybridTraining` ``options``) on its own input with the
    true labels (no gradient crosses layers), then all layers take their SGD step. ``lr`` may
    hold one rate per layer. The monitored metrics use ``model.log_proba(x, combine)``.
    """
    check(combine in ("top", "mean"), "combine", combine, "'top' or 'mean'")
    cfg = HybridTraining.from_options(options)
    return _train_layers(list(model.layers), lambda v: model.log_proba(v, combine), x, y, cfg,
                         x_unlabeled=x_unlabeled, valid=valid, lr_schedule=lr_schedule,
                         generator=generator, callback=callback, checkpoint=checkpoint,
                         trainer="train_deep_hybrid",
                         extra_signature={"combine": combine})  # fmt: skip


train_class_rbm.__doc__ += _RETURNS  # type: ignore[operator]
train_deep_hybrid.__doc__ += _RETURNS  # type: ignore[operator]


# ------------------------------------------------------------------ scikit-learn style estimator


def _as_tensor(a, dtype=None) -> Tensor:
    if isinstance(a, Tensor):
        return a.detach().cpu()
    import numpy as np

    return torch.as_tensor(np.asarray(a), dtype=dtype)


class ClassificationRBM:
    """A scikit-learn style classifier over :class:`ClassRBM` and :func:`train_class_rbm`.

    ``fit(X, y, X_unlabeled=None, X_valid=None, y_valid=None)``, ``predict``,
    ``predict_proba`` (the exact ``p(y | x)``), ``predict_log_proba``, ``score`` (accuracy),
    ``get_params`` / ``set_params`` (so ``sklearn.base.clone`` and grid searches work; this
    class does not inherit from sklearn). ``X`` holds inputs in [0, 1] (binary, or
    probabilities), ``y`` any labels (their sorted unique values become ``classes_``).
    ``random_state`` seeds initialization, batch order and sampling (same seed, same model).
    After ``fit``: ``model_`` (the :class:`ClassRBM`), ``classes_``, ``history_``.
    """

    def __init__(
        self,
        n_hidden: int = 100,
        *,
        objective: str = "hybrid",
        alpha: float = 0.01,
        beta: float = 0.1,
        lr: float = 0.05,
        epochs: int = 20,
        batch_size: int = 20,
        method: str = "cd",
        k: int = 1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        unlabeled_positive: str = "sample",
        early_stopping_patience: int | None = None,
        init_scale: float | None = None,
        random_state: int | None = None,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.n_hidden = n_hidden
        self.objective = objective
        self.alpha = alpha
        self.beta = beta
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.method = method
        self.k = k
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.unlabeled_positive = unlabeled_positive
        self.early_stopping_patience = early_stopping_patience
        self.init_scale = init_scale
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    #: the HybridTraining fields this estimator exposes, then all its parameters
    _TRAINING = ("objective", "alpha", "beta", "lr", "epochs", "batch_size", "method", "k")
    _TRAINING += ("momentum", "weight_decay", "unlabeled_positive", "early_stopping_patience")
    _PARAM_NAMES = ("n_hidden", *_TRAINING, "init_scale", "random_state", "device", "dtype")

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._PARAM_NAMES}

    def set_params(self, **params) -> ClassificationRBM:
        for name, value in params.items():
            check(name in self._PARAM_NAMES, "parameter", name, f"one of {self._PARAM_NAMES}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        return f"ClassificationRBM(n_hidden={self.n_hidden}, objective={self.objective!r})"

    def _encode(self, y) -> Tensor:
        import numpy as np

        y = np.asarray(y.cpu() if isinstance(y, Tensor) else y)
        idx = np.searchsorted(self.classes_, y)
        ok = (idx < len(self.classes_)) & (
            self.classes_[np.clip(idx, 0, len(self.classes_) - 1)] == y
        )
        check(bool(ok.all()), "y", "labels not seen in fit", f"labels in {list(self.classes_)}")
        return torch.as_tensor(idx, dtype=torch.long)

    def fit(self, X, y, X_unlabeled=None, X_valid=None, y_valid=None) -> ClassificationRBM:
        import numpy as np

        X = _as_tensor(X, torch.float64)
        self.classes_ = np.unique(np.asarray(y.cpu() if isinstance(y, Tensor) else y))
        check(len(self.classes_) >= 2, "y", f"{len(self.classes_)} class", "at least 2 classes")
        yi = self._encode(y)
        gen = torch.Generator()
        if self.random_state is None:
            gen.seed()
        else:
            gen.manual_seed(int(self.random_state))
        dev = torch.device(self.device)
        self.model_ = ClassRBM(
            X.shape[-1],
            self.n_hidden,
            len(self.classes_),
            init_scale=self.init_scale,
            generator=gen,
            dtype=self.dtype,
        ).to(dev)
        sample_gen = (
            gen
            if dev.type == "cpu"
            else torch.Generator(dev).manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
        )
        xu = None if X_unlabeled is None else _as_tensor(X_unlabeled, torch.float64)
        valid = None
        if X_valid is not None:
            valid = (_as_tensor(X_valid, torch.float64), self._encode(y_valid))
        self.history_ = train_class_rbm(
            self.model_,
            X.to(dev),
            yi.to(dev),
            x_unlabeled=None if xu is None else xu.to(dev),
            valid=valid,
            generator=sample_gen,
            **{name: getattr(self, name) for name in self._TRAINING},
        )
        return self

    def _check_fitted(self) -> None:
        check(hasattr(self, "model_"), "estimator", "not fitted", "call fit(X, y) first")

    @torch.no_grad()
    def predict_log_proba(self, X):
        self._check_fitted()
        X = _as_tensor(X, torch.float64).to(self.model_.W.device)
        return chunked(self.model_.log_proba, X).double().cpu().numpy()

    def predict_proba(self, X):
        import numpy as np

        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        idx = self.predict_log_proba(X).argmax(-1)
        return self.classes_[idx]

    def score(self, X, y) -> float:
        import numpy as np

        return float(
            np.mean(self.predict(X) == np.asarray(y.cpu() if isinstance(y, Tensor) else y))
        )
