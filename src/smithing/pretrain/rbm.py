"""Restricted Boltzmann machines: energies, conditionals, CD-k / PCD training, monitoring, samples.

Two kinds of visible units share one hidden layer of binary units ``h in {0, 1}^n_hidden``:

* **Bernoulli-Bernoulli** (binary visibles ``v in {0, 1}^n_visible``)::

      E(v, h) = -b^T v - c^T h - v^T W h
      F(v)    = -log sum_h exp(-E(v, h)) = -b^T v - sum_j softplus(c_j + v^T W[:, j])
      p(h_j = 1 | v) = sigmoid(c_j + v^T W[:, j])          p(v_i = 1 | h) = sigmoid(b_i + W[i] h)

* **Gaussian-Bernoulli** (real visibles), in the parametrization of Cho, Ilin & Raiko,
  "Improved Learning of Gaussian-Bernoulli Restricted Boltzmann Machines", ICANN 2011, with
  ``sigma_i^2 = exp(log_var_i)``::

      E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c^T h - sum_ij (v_i / sigma_i^2) W_ij h_j
      F(v)    = sum_i (v_i - b_i)^2 / (2 sigma_i^2)
                - sum_j softplus(c_j + sum_i v_i W_ij / sigma_i^2)
      p(h_j = 1 | v) = sigmoid(c_j + sum_i v_i W_ij / sigma_i^2)
      p(v_i | h)     = N(b_i + W[i] h, sigma_i^2)

  With unit variances (``log_var = 0``, the default, for standardized data) this is also the
  model of Hinton's guide (Sec. 13.2), whose parametrization divides by ``sigma_i`` instead of
  ``sigma_i^2``; the two differ only when variances are learned (``learn_variance=True``, where
  Cho et al.'s form is used: the learned parameter is ``log sigma_i^2``).

Layout: ``W`` is ``(n_visible, n_hidden)`` (the ``v^T W h`` of the formulas; Salakhutdinov's
``vishid``), ``b`` ``(n_visible,)``, ``c`` ``(n_hidden,)``. ``nn.Linear`` layout ``(out, in)``
is ``W.T``: see :meth:`BernoulliRBM.encoder`. Every pure function accepts an optional leading
members axis on the parameters (``W (M, n_visible, n_hidden)``, biases ``(M, n)``) and on the
data (``v (M, batch, n_visible)``; a members-free ``v (batch, n_visible)`` is broadcast to every
member), so an ensemble of RBMs is one set of batched matmuls.

Training (:func:`train_rbm`) follows Hinton, "A Practical Guide to Training Restricted Boltzmann
Machines", UTML TR 2010-003: the gradient of the log-likelihood is the expectation difference
``<v h^T>_data - <v h^T>_model`` with hidden *probabilities* in the positive phase, the model
expectation estimated by CD-k (Hinton, "Training products of experts by minimizing contrastive
divergence", Neural Computation 2002) or PCD / SML (Tieleman, "Training restricted Boltzmann
machines using approximations to the likelihood gradient", ICML 2008).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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

__all__ = [
    "BernoulliRBM",
    "GaussianBernoulliRBM",
    "PersistentChains",
    "cd_gradient",
    "energy",
    "filters_figure",
    "free_energy",
    "gaussian_cd_gradient",
    "gaussian_energy",
    "gaussian_free_energy",
    "gaussian_hidden_probs",
    "gaussian_visible_mean",
    "gibbs_step",
    "hidden_probs",
    "pseudo_likelihood",
    "reconstruction_error",
    "sample",
    "sample_bernoulli",
    "sample_gaussian",
    "train_rbm",
    "visible_probs",
]


# ------------------------------------------------------------------ pure functions


def _row(bias: Tensor) -> Tensor:
    """A bias ``(*members, n)`` made broadcastable against ``(*members, batch, n)``."""
    return bias.unsqueeze(-2) if bias.dim() >= 2 else bias


def energy(v: Tensor, h: Tensor, W: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Bernoulli-Bernoulli energy ``E(v, h) = -b^T v - c^T h - v^T W h``.

    Shapes: ``v (*M, batch, n_visible)``, ``h (*M, batch, n_hidden)``, ``W (*M, n_visible,
    n_hidden)``, ``b (*M, n_visible)``, ``c (*M, n_hidden)``; returns ``(*M, batch)``.
    """
    return -(v * _row(b)).sum(-1) - (h * _row(c)).sum(-1) - ((v @ W) * h).sum(-1)


def free_energy(v: Tensor, W: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Bernoulli-Bernoulli free energy ``F(v) = -b^T v - sum_j softplus(c_j + v^T W[:, j])``.

    ``p(v) = exp(-F(v)) / Z``; returns ``(*M, batch)``.
    """
    return -(v * _row(b)).sum(-1) - F.softplus(v @ W + _row(c)).sum(-1)  # (*M, batch)


def hidden_probs(v: Tensor, W: Tensor, c: Tensor) -> Tensor:
    """``p(h_j = 1 | v) = sigmoid(c_j + v^T W[:, j])``; returns ``(*M, batch, n_hidden)``."""
    return torch.sigmoid(v @ W + _row(c))


def visible_probs(h: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """``p(v_i = 1 | h) = sigmoid(b_i + W[i] h)``; returns ``(*M, batch, n_visible)``."""
    return torch.sigmoid(h @ W.transpose(-1, -2) + _row(b))


def sample_bernoulli(p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Binary states with ``P(x = 1) = p`` (``torch.bernoulli``; vmap-safe without generator)."""
    return torch.bernoulli(p, generator=generator)


def sample_gaussian(
    mean: Tensor, log_var: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """``x ~ N(mean, exp(log_var))`` elementwise (``log_var (*M, n)`` broadcast over the batch)."""
    if generator is None:
        noise = torch.randn_like(mean)  # vmap-safe
    else:
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + torch.exp(0.5 * _row(log_var)) * noise


def _expectations(v: Tensor, h: Tensor) -> dict[str, Tensor]:
    """Batch means of ``d(-E)/d theta`` for the Bernoulli RBM: ``<v h^T>, <v>, <h>``."""
    n = v.shape[-2]
    return {
        "W": v.transpose(-1, -2) @ h / n,  # (*M, n_visible, n_hidden)
        "b": v.mean(-2),  # (*M, n_visible)
        "c": h.mean(-2),  # (*M, n_hidden)
    }


def cd_gradient(v_pos: Tensor, h_pos: Tensor, v_neg: Tensor, h_neg: Tensor) -> dict[str, Tensor]:
    """The (C)D log-likelihood gradient of a Bernoulli RBM as an expectation difference.

    ``dW = <v h^T>_pos - <v h^T>_neg``, ``db = <v>_pos - <v>_neg``, ``dc = <h>_pos - <h>_neg``
    (Hinton's guide, eq. 9 and Sec. 3), each ``<.>`` a mean over the batch axis (-2), so the two
    phases may have different sizes (PCD: ``n_chains`` negatives). Pass hidden *probabilities*
    ``p(h | v)`` as ``h_pos`` (and, as usual, as ``h_neg``): this is the Rao-Blackwellized form of
    the estimator. With exact model samples as ``v_neg`` it is an unbiased estimate of the exact
    gradient ``d mean(log p(v_pos)) / d theta``. The gradient *ascends* the likelihood.
    """
    pos, neg = _expectations(v_pos, h_pos), _expectations(v_neg, h_neg)
    return {k: pos[k] - neg[k] for k in pos}


def gaussian_energy(
    v: Tensor, h: Tensor, W: Tensor, b: Tensor, c: Tensor, log_var: Tensor
) -> Tensor:
    """Gaussian-Bernoulli energy (Cho et al. 2011), ``sigma^2 = exp(log_var)``:

    ``E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c^T h - (v / sigma^2)^T W h``.
    """
    var = torch.exp(_row(log_var))
    quad = ((v - _row(b)) ** 2 / (2 * var)).sum(-1)  # (*M, batch)
    return quad - (h * _row(c)).sum(-1) - (((v / var) @ W) * h).sum(-1)


def gaussian_free_energy(v: Tensor, W: Tensor, b: Tensor, c: Tensor, log_var: Tensor) -> Tensor:
    """Gaussian-Bernoulli free energy (Cho et al. 2011), ``sigma^2 = exp(log_var)``:

    ``F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + (v/sigma^2)^T W[:, j])``.
    """
    var = torch.exp(_row(log_var))
    quad = ((v - _row(b)) ** 2 / (2 * var)).sum(-1)
    return quad - F.softplus((v / var) @ W + _row(c)).sum(-1)  # (*M, batch)


def gaussian_hidden_probs(v: Tensor, W: Tensor, c: Tensor, log_var: Tensor) -> Tensor:
    """``p(h_j = 1 | v) = sigmoid(c_j + sum_i v_i W_ij / sigma_i^2)`` (Cho et al. 2011)."""
    return torch.sigmoid((v / torch.exp(_row(log_var))) @ W + _row(c))


def gaussian_visible_mean(h: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """Mean of ``p(v | h) = N(b + W h, sigma^2)``; returns ``(*M, batch, n_visible)``."""
    return h @ W.transpose(-1, -2) + _row(b)


def _gaussian_expectations(
    v: Tensor, h: Tensor, W: Tensor, b: Tensor, log_var: Tensor, with_var: bool
) -> dict[str, Tensor]:
    n = v.shape[-2]
    inv_var = torch.exp(-_row(log_var))
    out = {
        "W": (v * inv_var).transpose(-1, -2) @ h / n,  # <(v/sigma^2) h^T>  (*M, nv, nh)
        "b": ((v - _row(b)) * inv_var).mean(-2),  # <(v - b)/sigma^2>
        "c": h.mean(-2),  # <h>
    }
    if with_var:
        # d(-E)/d log_var_i = exp(-z_i) ((v_i - b_i)^2 / 2 - v_i (W h)_i)   (Cho et al. 2011)
        wh = h @ W.transpose(-1, -2)  # (*M, batch, n_visible)
        out["log_var"] = (inv_var * (0.5 * (v - _row(b)) ** 2 - v * wh)).mean(-2)
    return out


def gaussian_cd_gradient(
    v_pos: Tensor,
    h_pos: Tensor,
    v_neg: Tensor,
    h_neg: Tensor,
    W: Tensor,
    b: Tensor,
    log_var: Tensor,
    *,
    with_var: bool = True,
) -> dict[str, Tensor]:
    """CD gradient of a Gaussian-Bernoulli RBM: ``<d(-E)/d theta>_pos - <d(-E)/d theta>_neg``.

    ``d(-E)/dW_ij = v_i h_j / sigma_i^2``, ``d(-E)/db_i = (v_i - b_i) / sigma_i^2``,
    ``d(-E)/dc_j = h_j``, ``d(-E)/d log sigma_i^2 = ((v_i - b_i)^2 / 2 - v_i (W h)_i) / sigma_i^2``
    (Cho, Ilin & Raiko, ICANN 2011). ``with_var=False`` omits the ``log_var`` entry.
    """
    pos = _gaussian_expectations(v_pos, h_pos, W, b, log_var, with_var)
    neg = _gaussian_expectations(v_neg, h_neg, W, b, log_var, with_var)
    return {k: pos[k] - neg[k] for k in pos}


def pseudo_likelihood(
    free_energy_fn: Callable[[Tensor], Tensor],
    v: Tensor,
    *,
    flip_index: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Stochastic pseudo-log-likelihood, as scikit-learn's ``BernoulliRBM.score_samples``.

    For each example one visible index ``i`` (random, or ``flip_index (batch,)``) is flipped,
    ``v~_i = 1 - v_i``, and ``PL(v) = n_visible * log sigmoid(F(v~) - F(v))``, an unbiased
    one-sample estimate of ``sum_i log p(v_i | v_-i)`` (Besag 1975). Returns ``(*M, batch)``.
    ``free_energy_fn`` is e.g. ``rbm.free_energy``.
    """
    n, nv = v.shape[-2], v.shape[-1]
    if flip_index is None:
        flip_index = torch.randint(nv, (n,), generator=generator, device=v.device)
    rows = torch.arange(n, device=v.device)
    v_flip = v.clone()
    v_flip[..., rows, flip_index] = 1 - v_flip[..., rows, flip_index]
    return nv * F.logsigmoid(free_energy_fn(v_flip) - free_energy_fn(v))  # sklearn's formula


# ------------------------------------------------------------------ modules


class BernoulliRBM(nn.Module):
    """Binary-binary RBM with parameters ``W (*M, n_visible, n_hidden)``, ``b``, ``c``.

    Initialization as in Hinton's guide (Sec. 8): ``W ~ N(0, init_std^2)`` (0.01), zero
    biases; :meth:`init_visible_bias_` sets ``b_i = log(p_i / (1 - p_i))`` from the data.
    ``members`` adds a leading members axis (an ensemble of independent RBMs). The module holds
    parameters only: training is :func:`train_rbm`.
    """

    visible_type = "bernoulli"

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        members: int | None = None,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check(
            isinstance(n_visible, int) and n_visible > 0, "n_visible", n_visible, "a positive int"
        )
        check(isinstance(n_hidden, int) and n_hidden > 0, "n_hidden", n_hidden, "a positive int")
        check(
            members is None or (isinstance(members, int) and members > 0),
            "members",
            members,
            "None or a positive int",
        )
        check(init_std >= 0, "init_std", init_std, "a non-negative number")
        lead = () if members is None else (members,)
        kw = {"device": device, "dtype": dtype or torch.get_default_dtype()}
        W = torch.randn((*lead, n_visible, n_hidden), generator=generator, **kw) * init_std
        self.W = nn.Parameter(W)  # (*M, n_visible, n_hidden)
        self.b = nn.Parameter(torch.zeros((*lead, n_visible), **kw))  # visible biases
        self.c = nn.Parameter(torch.zeros((*lead, n_hidden), **kw))  # hidden biases

    @property
    def n_visible(self) -> int:
        return self.W.shape[-2]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[-1]

    @property
    def members(self) -> int | None:
        return self.W.shape[0] if self.W.dim() == 3 else None

    def forward(self, v: Tensor) -> Tensor:
        return self.hidden_probs(v)

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        return energy(v, h, self.W, self.b, self.c)

    def free_energy(self, v: Tensor) -> Tensor:
        return free_energy(v, self.W, self.b, self.c)

    def hidden_probs(self, v: Tensor) -> Tensor:
        return hidden_probs(v, self.W, self.c)

    def visible_mean(self, h: Tensor) -> Tensor:
        """``E[v | h]``: the probabilities ``p(v = 1 | h)``."""
        return visible_probs(h, self.W, self.b)

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return sample_bernoulli(self.visible_mean(h), generator)

    def visible_drive(self, v: Tensor) -> Tensor:
        """What multiplies ``W`` in the hidden units' input ``c + drive(v) W`` (here ``v``)."""
        return v

    def expectations(self, v: Tensor, h: Tensor) -> dict[str, Tensor]:
        """Batch means of ``d(-E)/d theta`` keyed by parameter name (see :func:`cd_gradient`)."""
        return _expectations(v, h)

    def encoder(self) -> tuple[Tensor, Tensor]:
        """``(weight (*M, n_hidden, n_visible), bias (*M, n_hidden))`` in ``nn.Linear`` layout:
        ``p(h | v) = sigmoid(v @ weight.T + bias)``; ``weight = W.T`` (an explicit transpose)."""
        return self.W.detach().transpose(-1, -2).clone(
            memory_format=torch.contiguous_format
        ), self.c.detach().clone()

    @torch.no_grad()
    def init_visible_bias_(self, data: Tensor, eps: float = 1e-3) -> BernoulliRBM:
        """``b_i = log(p_i / (1 - p_i))`` with ``p_i`` the data mean clipped to ``[eps, 1-eps]``
        (Hinton's guide, Sec. 8). ``data (n, n_visible)`` or ``(M, n, n_visible)``."""
        p = data.mean(-2).clamp(eps, 1 - eps)
        self.b.copy_(torch.log(p) - torch.log1p(-p))
        return self

    def random_visible(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Uniform random binary visibles ``(*M, n, n_visible)`` (a chain's start)."""
        lead = () if self.members is None else (self.members,)
        p = torch.full((*lead, n, self.n_visible), 0.5, dtype=self.W.dtype, device=self.W.device)
        return sample_bernoulli(p, generator)

    def extra_repr(self) -> str:
        m = "" if self.members is None else f", members={self.members}"
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}{m}"


class GaussianBernoulliRBM(BernoulliRBM):
    """Real-valued visibles, binary hiddens (Cho, Ilin & Raiko, ICANN 2011 parametrization).

    ``sigma_i^2 = exp(log_var_i)``; ``log_var`` is a fixed zero buffer (unit variances, for
    standardized data: Hinton's guide Sec. 13.2) unless ``learn_variance=True``, when it is a
    parameter trained with the gradient of :func:`gaussian_cd_gradient`. ``log_var_init`` sets
    its starting value.
    """

    visible_type = "gaussian"

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        learn_variance: bool = False,
        log_var_init: float = 0.0,
        members: int | None = None,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            n_visible,
            n_hidden,
            members=members,
            init_std=init_std,
            generator=generator,
            device=device,
            dtype=dtype,
        )
        z = torch.full_like(self.b, float(log_var_init))
        self.learn_variance = bool(learn_variance)
        if self.learn_variance:
            self.log_var = nn.Parameter(z)  # (*M, n_visible)
        else:
            self.register_buffer("log_var", z)

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        return gaussian_energy(v, h, self.W, self.b, self.c, self.log_var)

    def free_energy(self, v: Tensor) -> Tensor:
        return gaussian_free_energy(v, self.W, self.b, self.c, self.log_var)

    def hidden_probs(self, v: Tensor) -> Tensor:
        return gaussian_hidden_probs(v, self.W, self.c, self.log_var)

    def visible_mean(self, h: Tensor) -> Tensor:
        return gaussian_visible_mean(h, self.W, self.b)

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return sample_gaussian(self.visible_mean(h), self.log_var, generator)

    def visible_drive(self, v: Tensor) -> Tensor:
        return v / torch.exp(_row(self.log_var))

    def expectations(self, v: Tensor, h: Tensor) -> dict[str, Tensor]:
        return _gaussian_expectations(v, h, self.W, self.b, self.log_var, self.learn_variance)

    def encoder(self) -> tuple[Tensor, Tensor]:
        """``weight = (W / sigma^2[:, None]).T``: ``p(h | v) = sigmoid(v @ weight.T + c)``."""
        W = self.W.detach() / torch.exp(self.log_var.detach()).unsqueeze(-1)
        return W.transpose(-1, -2).clone(
            memory_format=torch.contiguous_format
        ), self.c.detach().clone()

    @torch.no_grad()
    def init_visible_bias_(self, data: Tensor, eps: float = 0.0) -> GaussianBernoulliRBM:
        """``b = mean(data)`` (the maximum-likelihood mean of the model without hiddens)."""
        self.b.copy_(data.mean(-2))
        return self

    def random_visible(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draws from ``N(b, sigma^2)`` ``(*M, n, n_visible)``."""
        mean = _row(self.b.detach()).expand(*self.b.shape[:-1], n, self.n_visible)
        return sample_gaussian(mean.contiguous(), self.log_var.detach(), generator)


# ------------------------------------------------------------------ Gibbs sampling


def gibbs_step(
    rbm: BernoulliRBM, v: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """One block-Gibbs sweep ``v -> h ~ p(h|v) -> v' ~ p(v|h)``; returns ``(v', E[v'|h])``."""
    h = sample_bernoulli(rbm.hidden_probs(v), generator)  # (*M, n, n_hidden)
    mean = rbm.visible_mean(h)  # (*M, n, n_visible)
    if rbm.visible_type == "gaussian":
        return sample_gaussian(mean, rbm.log_var, generator), mean
    return sample_bernoulli(mean, generator), mean


@dataclass
class PersistentChains:
    """The fantasy particles of PCD / SML (Tieleman 2008): visible states that persist.

    ``v (*M, n_chains, n_visible)`` is replaced (not mutated in place) after each update, and
    ``updates`` counts the parameter updates it has served. Pass the same object to
    :func:`train_rbm` again to continue its chains.
    """

    v: Tensor
    updates: int = 0

    @classmethod
    def init(
        cls,
        rbm: BernoulliRBM,
        n_chains: int,
        *,
        data: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PersistentChains:
        """Chains started at random states of ``rbm`` or, given ``data (n, n_visible)``, at
        ``n_chains`` random training examples."""
        check(isinstance(n_chains, int) and n_chains > 0, "n_chains", n_chains, "a positive int")
        if data is None:
            return cls(rbm.random_visible(n_chains, generator).detach())
        idx = torch.randint(data.shape[-2], (n_chains,), generator=generator, device=data.device)
        v = data[..., idx, :].to(rbm.W.dtype)
        if rbm.members is not None and v.dim() == 2:
            v = v.expand(rbm.members, *v.shape)
        return cls(v.clone())


@torch.no_grad()
def sample(
    rbm: BernoulliRBM,
    n: int,
    steps: int = 1000,
    *,
    init: Tensor | None = None,
    generator: torch.Generator | None = None,
    return_mean: bool = True,
) -> Tensor:
    """``n`` Gibbs chains of ``steps`` sweeps from ``init ((*M,) n, n_visible)`` (default:
    random states); returns the final ``E[v | h]`` (``return_mean``, smoother images) or the
    final samples, ``(*M, n, n_visible)``."""
    check(isinstance(steps, int) and steps >= 1, "steps", steps, "an int >= 1")
    if init is None:
        v = rbm.random_visible(n, generator)
    else:
        check(
            init.shape[-2:] == (n, rbm.n_visible),
            "init",
            tuple(init.shape),
            f"shape (..., {n}, {rbm.n_visible})",
        )
        v = init.to(rbm.W.dtype)
    for _ in range(steps):
        v, mean = gibbs_step(rbm, v, generator)
    return mean if return_mean else v


# ------------------------------------------------------------------ training


def reconstruction_error(v: Tensor, recon: Tensor) -> Tensor:
    """Mean squared error ``mean((v - recon)^2)`` over batch and visibles; ``(*M,)``."""
    return ((v - recon) ** 2).mean((-2, -1))


def _momentum_schedule(momentum: float | str | Callable[[int], float]) -> Callable[[int], float]:
    if callable(momentum):
        return momentum
    if isinstance(momentum, str):
        check(
            momentum == "hinton",
            "momentum",
            momentum,
            "a number in [0, 1), 'hinton' or a callable epoch -> momentum",
        )
        return lambda epoch: 0.5 if epoch < 5 else 0.9  # Hinton's guide, Sec. 9
    check(0.0 <= momentum < 1.0, "momentum", momentum, "a number in [0, 1)")
    return lambda epoch: float(momentum)


def _to_py(t: Tensor) -> float | list[float]:
    return t.detach().cpu().tolist()


def train_rbm(
    rbm: BernoulliRBM,
    data: Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 100,
    lr: float | Sequence[float] = 0.1,
    method: str = "cd",
    k: int = 1,
    n_chains: int | None = None,
    chains: PersistentChains | None = None,
    momentum: float | str | Callable[[int], float] = 0.0,
    weight_decay: float = 0.0,
    sparsity_target: float | None = None,
    sparsity_cost: float = 0.0,
    sparsity_damping: float = 0.9,
    lr_schedule: Callable[[int], float] | None = None,
    negative_visible: str = "sample",
    valid_data: Tensor | None = None,
    monitor_size: int = 1000,
    generator: torch.Generator | None = None,
    callback: Callable[[int, dict], object] | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
) -> dict[str, list]:
    """Train ``rbm`` in place by CD-k or PCD and return the per-epoch history.

    Update (Hinton's guide, eqs. 9-10 and Sec. 9-11), for every parameter ``theta``::

        g = <d(-E)/d theta>_data - <d(-E)/d theta>_model       (positive phase: p(h|v_data))
            - weight_decay * W                                    (L2 "weight-cost", weights only)
            - sparsity_cost * (q - sparsity_target) * d x / d theta  (on c and W, Sec. 11)
        delta = momentum * delta + lr * lr_schedule(epoch) * g;   theta += delta

    ``q_j = damping * q_j + (1 - damping) * mean_batch p(h_j | v)`` is the running mean
    activity; ``x_j`` the hidden unit's total input (Lee, Ekanadham & Ng, NIPS 2008 use a
    similar penalty on the biases only). The step is ``torch.optim.SGD(lr=1, momentum)`` fed
    ``.grad = -lr * g``: exactly the guide's ``delta`` form, also when the learning rate changes
    (PyTorch's own ``lr`` would rescale the whole momentum buffer instead).

    Negative phase: ``method="cd"`` runs ``k`` Gibbs sweeps from the data batch (CD-k);
    ``method="pcd"`` runs ``k`` sweeps of ``n_chains`` persistent chains (default
    ``batch_size``) that carry over across batches and epochs (pass ``chains`` to reuse or
    inspect them). The negative hidden statistics are probabilities ``p(h | v_neg)``; the
    negative visibles are the sampled states (``negative_visible="sample"``) or their means
    (``"mean"``, as in Hinton & Salakhutdinov's code).

    ``momentum`` is a number, ``"hinton"`` (0.5 for the first 5 epochs, then 0.9: guide
    Sec. 9) or a callable ``epoch -> momentum``; ``lr_schedule`` a callable ``epoch -> factor``.
    ``generator`` (on ``data``'s device) drives batch order, Gibbs sampling and the
    pseudo-likelihood's flips: same seed, same result.

    Ensembles: for an RBM with ``members=M`` every member has its own batch order (an
    independent permutation) and its own chains; ``lr`` may be a sequence of ``M`` rates.
    ``data`` is ``(n, n_visible)`` shared by all members, or ``(M, n, n_visible)``. Mini-batches
    are index slices of the device-resident ``data`` (no DataLoader).

    Monitoring per epoch (cheap): ``recon_error`` (mean squared ``v - E[v | h ~ p(h|v)]``,
    averaged over the epoch's batches), ``pseudo_likelihood`` (Bernoulli only; scikit-learn's
    ``score_samples`` estimator, mean over the first ``monitor_size`` training examples),
    ``free_energy_train`` / ``free_energy_valid`` (mean ``F(v)`` on that subset and on
    ``valid_data[:monitor_size]``; a growing gap signals overfitting, guide Sec. 6). Values are
    floats, or lists of ``M`` floats for an ensemble. ``callback(epoch, record)`` runs after each
    epoch; a truthy return stops training.

    ``checkpoint`` (a :class:`~smithing.checkpoint.Checkpointer` or a path) makes the run
    resumable: training continues from the newest valid checkpoint there and saves as its
    policy says (epoch ends, optionally mid-epoch). It holds the parameters and buffers, the
    momentum buffers, the persistent chains (written into ``chains`` when given), the sparsity
    running mean ``q``, the states of ``generator`` and of the global torch / Python / NumPy
    generators, the history, the epoch and the position in it (the permutation, the next
    batch, the reconstruction-error sum). A resumed run ends bitwise equal (on CPU) to the
    run uninterrupted, ``time_s`` aside.
    """
    check(method in ("cd", "pcd"), "method", method, "'cd' or 'pcd'")
    check(
        negative_visible in ("sample", "mean"),
        "negative_visible",
        negative_visible,
        "'sample' or 'mean'",
    )
    check(isinstance(epochs, int) and epochs >= 0, "epochs", epochs, "an int >= 0")
    check(
        isinstance(batch_size, int) and batch_size > 0, "batch_size", batch_size, "a positive int"
    )
    check(isinstance(k, int) and k >= 1, "k", k, "an int >= 1")
    check(weight_decay >= 0, "weight_decay", weight_decay, "a non-negative number")
    check(sparsity_cost >= 0, "sparsity_cost", sparsity_cost, "a non-negative number")
    check(
        sparsity_target is None or 0 < sparsity_target < 1,
        "sparsity_target",
        sparsity_target,
        "None or a number in (0, 1)",
    )
    check(0 <= sparsity_damping < 1, "sparsity_damping", sparsity_damping, "a number in [0, 1)")
    check(monitor_size > 0, "monitor_size", monitor_size, "a positive int")
    M = rbm.members
    expected = f"(n, {rbm.n_visible})" + ("" if M is None else f" or ({M}, n, {rbm.n_visible})")
    shared = data.dim() == 2
    check(
        data.shape[-1] == rbm.n_visible
        and (shared or (M is not None and data.dim() == 3 and data.shape[0] == M)),
        "data.shape",
        tuple(data.shape),
        expected,
    )
    check(
        data.device == rbm.W.device, "data.device", data.device, f"the RBM's device {rbm.W.device}"
    )
    momentum_at = _momentum_schedule(momentum)
    dev, dtype = rbm.W.device, rbm.W.dtype
    lr_t = torch.as_tensor(lr, dtype=dtype, device=dev)
    check(
        lr_t.dim() == 0 or (M is not None and lr_t.shape == (M,)),
        "lr",
        lr,
        "a number" + ("" if M is None else f" or a sequence of {M} numbers"),
    )
    check(bool((lr_t > 0).all()), "lr", lr, "positive learning rates")
    data = data.to(dtype)
    n = data.shape[-2]
    if method == "pcd":
        if chains is None:
            chains = PersistentChains.init(rbm, n_chains or batch_size, generator=generator)
        want = (*(() if M is None else (M,)), rbm.n_visible)
        check(
            chains.v.shape[:-2] + chains.v.shape[-1:] == want,
            "chains.v.shape",
            tuple(chains.v.shape),
            f"(*members, n_chains, n_visible) with {want}",
        )

    params = dict(rbm.named_parameters())
    opt = torch.optim.SGD(list(params.values()), lr=1.0, momentum=momentum_at(0))

    def lr_for(p: Tensor) -> Tensor:  # (M, 1, ..) so each member gets its own rate
        return lr_t if lr_t.dim() == 0 else lr_t.view(-1, *([1] * (p.dim() - 1)))

    mon_train = data[..., :monitor_size, :]
    mon_valid = None if valid_data is None else valid_data[..., :monitor_size, :].to(dtype)
    history: dict[str, list] = {
        "epoch": [],
        "lr": [],
        "momentum": [],
        "recon_error": [],
        "free_energy_train": [],
        "time_s": [],
    }
    if rbm.visible_type == "bernoulli":
        history["pseudo_likelihood"] = []
    if mon_valid is not None:
        history["free_energy_valid"] = []
    q = None  # running mean hidden activity (sparsity)
    members_idx = None if M is None else torch.arange(M, device=dev).unsqueeze(-1)  # (M, 1)
    ckpt = as_checkpointer(checkpoint)
    signature = {
        "epochs": epochs,
        "batch_size": batch_size,
        "method": method,
        "k": k,
        "n_chains": None if chains is None else list(chains.v.shape),
        "data": list(data.shape),
        "visible_type": rbm.visible_type,
        "parameters": [[name, list(v.shape)] for name, v in rbm.state_dict().items()],
        "lr": _to_py(lr_t),
        "weight_decay": weight_decay,
        "sparsity": [sparsity_target, sparsity_cost, sparsity_damping],
        "negative_visible": negative_visible,
        "generator": generator is not None,
    }
    first_epoch, resume, finished = 0, None, False

    def snapshot(epoch: int, position: dict | None = None, done: bool = False) -> dict:
        return {
            "trainer": "train_rbm",
            "signature": signature,
            "epoch": epoch,
            "position": position,
            "finished": done,
            "rbm": rbm.state_dict(),
            "optimizer": opt.state_dict(),
            "chains": None if chains is None else {"v": chains.v, "updates": chains.updates},
            "q": q,
            "generator": None if generator is None else generator.get_state(),
            "rng": rng_state(dev),
            "history": history,
        }

    state = None if ckpt is None else ckpt.load()
    if state is not None:
        check_signature(ckpt, state, "train_rbm", signature)
        with torch.no_grad():
            rbm.load_state_dict(state["rbm"])
        opt.load_state_dict(state["optimizer"])
        if chains is not None:
            chains.v = state["chains"]["v"].to(device=dev, dtype=chains.v.dtype)
            chains.updates = state["chains"]["updates"]
        q = None if state["q"] is None else state["q"].to(dev)
        if generator is not None:
            generator.set_state(state["generator"])
        for key, values in state["history"].items():
            history[key][:] = values
        first_epoch, resume, finished = state["epoch"], state["position"], state["finished"]
        set_rng_state(state["rng"])  # last: nothing may draw from the global generators after
    if ckpt is not None:
        ckpt.start()
    for epoch in range(first_epoch, 0 if finished else epochs):
        t0 = time.perf_counter()
        factor = 1.0 if lr_schedule is None else float(lr_schedule(epoch))
        mom = float(momentum_at(epoch))
        for group in opt.param_groups:
            group["momentum"] = mom
        if resume is not None:  # a mid-epoch checkpoint: the same order, from the next batch
            perm, err_sum = resume["perm"].to(dev), resume["err_sum"].to(dev)
            n_batches, begin, resume = resume["n_batches"], resume["batch"], None
        else:
            if M is None:
                perm = torch.randperm(n, generator=generator, device=dev)  # (n,)
            else:  # an independent order per member
                perm = torch.rand((M, n), generator=generator, device=dev).argsort(-1)  # (M, n)
            err_sum = torch.zeros(() if M is None else (M,), dtype=dtype, device=dev)
            n_batches, begin = 0, 0
        for start in range(begin, n, batch_size):
            idx = perm[..., start : start + batch_size]  # (*M, B)
            if M is None:
                v0 = data[idx]  # (B, nv)
            elif shared:
                v0 = data[idx]  # (M, B, nv)
            else:
                v0 = data[members_idx, idx]  # (M, B, nv)
            with torch.no_grad():
                ph0 = rbm.hidden_probs(v0)  # positive phase: probabilities (guide Sec. 3.2)
                h = sample_bernoulli(ph0, generator)
                recon = rbm.visible_mean(h)  # (*M, B, nv) first reconstruction
                if method == "cd":
                    mean, v = recon, v0
                    for step in range(k):  # CD-k: k sweeps started at the data
                        if step > 0:
                            h = sample_bernoulli(rbm.hidden_probs(v), generator)
                            mean = rbm.visible_mean(h)
                        v = _draw_visible(rbm, mean, generator)
                else:
                    v = chains.v  # PCD: continue the persistent chains
                    for _ in range(k):
                        v, mean = gibbs_step(rbm, v, generator)
                    chains.v = v
                    chains.updates += 1
                v_neg = mean if negative_visible == "mean" else v
                ph_neg = rbm.hidden_probs(v_neg)
                pos, neg = rbm.expectations(v0, ph0), rbm.expectations(v_neg, ph_neg)
                grad = {name: pos[name] - neg[name] for name in pos}  # <.>_data - <.>_model
                if weight_decay:
                    grad["W"] = grad["W"] - weight_decay * rbm.W  # L2 weight-cost (Sec. 10)
                if sparsity_target is not None and sparsity_cost > 0:
                    batch_q = ph0.mean(-2)  # (*M, nh)
                    if q is None:
                        q = batch_q
                    else:  # q <- damping q + (1 - damping) q_batch   (guide Sec. 11.1)
                        q = sparsity_damping * q + (1 - sparsity_damping) * batch_q
                    d = q - sparsity_target  # d CE / d x_j (guide Sec. 11.1)
                    grad["c"] = grad["c"] - sparsity_cost * d
                    drive = rbm.visible_drive(v0).mean(-2)  # (*M, nv)
                    grad["W"] = grad["W"] - sparsity_cost * drive.unsqueeze(-1) * d.unsqueeze(-2)
                for name, p in params.items():
                    p.grad = -(lr_for(p) * factor) * grad[name]  # SGD descends -g
                err_sum += reconstruction_error(v0, recon)
                n_batches += 1
            opt.step()
            if ckpt is not None and start + batch_size < n and ckpt.due(batches=n_batches):
                pos = {"perm": perm, "batch": start + batch_size, "err_sum": err_sum}
                ckpt.save(snapshot(epoch, pos | {"n_batches": n_batches}))
        with torch.no_grad():
            record = {
                "epoch": epoch,
                "lr": _to_py(lr_t * factor),
                "momentum": mom,
                "recon_error": _to_py(err_sum / max(n_batches, 1)),
                "free_energy_train": _to_py(rbm.free_energy(mon_train).mean(-1)),
            }
            if rbm.visible_type == "bernoulli":
                pl = pseudo_likelihood(rbm.free_energy, mon_train, generator=generator)
                record["pseudo_likelihood"] = _to_py(pl.mean(-1))
            if mon_valid is not None:
                record["free_energy_valid"] = _to_py(rbm.free_energy(mon_valid).mean(-1))
        record["time_s"] = time.perf_counter() - t0
        for key, value in record.items():
            history[key].append(value)
        if callback is not None and callback(epoch, record):
            break
        if ckpt is not None and epoch + 1 < epochs and ckpt.due(epoch_end=True):
            ckpt.save(snapshot(epoch + 1))
    if ckpt is not None and ckpt.save_final and not finished:
        ckpt.save(snapshot(epochs, done=True))
    opt.zero_grad(set_to_none=True)
    return history


def _draw_visible(rbm: BernoulliRBM, mean: Tensor, generator: torch.Generator | None) -> Tensor:
    if rbm.visible_type == "gaussian":
        return sample_gaussian(mean, rbm.log_var, generator)
    return sample_bernoulli(mean, generator)


# ------------------------------------------------------------------ figures


def filters_figure(
    rbm: BernoulliRBM,
    image_shape: tuple[int, int],
    path: str | Path,
    *,
    n_filters: int = 100,
    member: int = 0,
    title: str | None = None,
) -> Path:
    """Save the first ``n_filters`` hidden units' incoming weights ``W[:, j]`` as an image grid.

    Each filter is scaled to its own ``[-max|w|, max|w|]`` (grey = 0). Uses matplotlib's
    object API with the Agg canvas (no pyplot, no global backend change).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    check(
        len(image_shape) == 2 and image_shape[0] * image_shape[1] == rbm.n_visible,
        "image_shape",
        image_shape,
        f"(rows, cols) with rows * cols = {rbm.n_visible}",
    )
    W = rbm.W.detach()
    if W.dim() == 3:
        W = W[member]
    W = W.cpu().float()
    n = min(n_filters, rbm.n_hidden)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(cols * 0.6 + 0.2, rows * 0.6 + (0.5 if title else 0.2)))
    FigureCanvasAgg(fig)
    for j in range(rows * cols):
        ax = fig.add_subplot(rows, cols, j + 1)
        ax.set_axis_off()
        if j < n:
            w = W[:, j].reshape(image_shape)
            lim = float(w.abs().max()) or 1.0
            ax.imshow(w.numpy(), cmap="gray", vmin=-lim, vmax=lim, interpolation="nearest")
    top = 1 - 0.4 / fig.get_figheight() if title else 0.98
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=top, wspace=0.05, hspace=0.05)
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
