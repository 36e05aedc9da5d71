"""The RBM's equations as pure functions on tensors: energies, free energies, conditionals,
sampling, the CD gradients (Bernoulli and Gaussian-Bernoulli) and the pseudo-likelihood. Every
function takes the parameters explicitly (leading members axes allowed) and holds no state."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "cd_gradient",
    "energy",
    "free_energy",
    "gaussian_cd_gradient",
    "gaussian_energy",
    "gaussian_free_energy",
    "gaussian_hidden_probs",
    "gaussian_visible_mean",
    "hidden_probs",
    "pseudo_likelihood",
    "sample_bernoulli",
    "sample_gaussian",
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
