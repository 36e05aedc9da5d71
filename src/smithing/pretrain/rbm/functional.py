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
    r"""Bernoulli-Bernoulli energy ``E(v, h) = -b^T v - c^T h - v^T W h``.

    $$
    E(v, h) = -\sum_i b_i v_i - \sum_j c_j h_j - \sum_{i,j} v_i W_{ij} h_j,
    \qquad p(v, h) = \frac{e^{-E(v, h)}}{Z}
    $$

    with $v$ the binary visible units (``v``), $h$ the binary hidden units (``h``), $W$ the
    weights ``W``, $b$ the visible biases ``b``, $c$ the hidden biases ``c`` and $Z$ the
    partition function.

    Args:
        v: visible states ``(*M, batch, n_visible)``.
        h: hidden states ``(*M, batch, n_hidden)``.
        W: weights ``(*M, n_visible, n_hidden)``.
        b: visible biases ``(*M, n_visible)``.
        c: hidden biases ``(*M, n_hidden)``.

    Returns:
        $E(v, h)$, shape ``(*M, batch)``.

    References:
        Hinton, "A practical guide to training restricted Boltzmann machines", UTML TR
        2010-003, Sec. 2, eq. 1.

    Examples:
        >>> import torch
        >>> W, b, c = torch.ones(2, 1), torch.zeros(2), torch.zeros(1)
        >>> energy(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0]]), W, b, c)
        tensor([-2.])
    """
    return -(v * _row(b)).sum(-1) - (h * _row(c)).sum(-1) - ((v @ W) * h).sum(-1)


def free_energy(v: Tensor, W: Tensor, b: Tensor, c: Tensor) -> Tensor:
    r"""Bernoulli-Bernoulli free energy ``F(v) = -b^T v - sum_j softplus(c_j + v^T W[:, j])``.

    $$
    F(v) = -\log \sum_h e^{-E(v, h)} = -\sum_i b_i v_i - \sum_j \log\left(1 + e^{c_j +
    \sum_i v_i W_{ij}}\right), \qquad p(v) = \frac{e^{-F(v)}}{Z}
    $$

    with $v$ = ``v``, $W$ = ``W``, $b$ = ``b`` (visible biases), $c$ = ``c`` (hidden biases);
    the sum over the binary hidden states factorizes into the softplus terms.

    Args:
        v: visible states ``(*M, batch, n_visible)``.
        W: weights ``(*M, n_visible, n_hidden)``.
        b: visible biases ``(*M, n_visible)``.
        c: hidden biases ``(*M, n_hidden)``.

    Returns:
        $F(v)$, shape ``(*M, batch)``.

    References:
        Hinton, "A practical guide to training restricted Boltzmann machines", UTML TR
        2010-003, Sec. 16.1.

    Examples:
        >>> import torch
        >>> W, b, c = torch.zeros(2, 1), torch.zeros(2), torch.zeros(1)
        >>> free_energy(torch.tensor([[1.0, 0.0]]), W, b, c)  # -log 2
        tensor([-0.6931])
    """
    return -(v * _row(b)).sum(-1) - F.softplus(v @ W + _row(c)).sum(-1)  # (*M, batch)


def hidden_probs(v: Tensor, W: Tensor, c: Tensor) -> Tensor:
    r"""``p(h_j = 1 | v) = sigmoid(c_j + v^T W[:, j])``; returns ``(*M, batch, n_hidden)``.

    $$
    p(h_j = 1 \mid v) = \sigma\left(c_j + \sum_i v_i W_{ij}\right), \qquad
    \sigma(x) = \frac{1}{1 + e^{-x}}
    $$

    Args:
        v: visible states ``(*M, batch, n_visible)``.
        W: weights ``(*M, n_visible, n_hidden)``.
        c: hidden biases ``(*M, n_hidden)``.

    Returns:
        The probabilities, ``(*M, batch, n_hidden)``.

    References:
        Hinton, "A practical guide to training restricted Boltzmann machines", 2010, Sec. 2.
    """
    return torch.sigmoid(v @ W + _row(c))


def visible_probs(h: Tensor, W: Tensor, b: Tensor) -> Tensor:
    r"""``p(v_i = 1 | h) = sigmoid(b_i + W[i] h)``; returns ``(*M, batch, n_visible)``.

    $$
    p(v_i = 1 \mid h) = \sigma\left(b_i + \sum_j W_{ij} h_j\right)
    $$

    Args:
        h: hidden states ``(*M, batch, n_hidden)``.
        W: weights ``(*M, n_visible, n_hidden)``.
        b: visible biases ``(*M, n_visible)``.

    Returns:
        The probabilities, ``(*M, batch, n_visible)``.

    References:
        Hinton, "A practical guide to training restricted Boltzmann machines", 2010, Sec. 2.
    """
    return torch.sigmoid(h @ W.transpose(-1, -2) + _row(b))


def sample_bernoulli(p: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Binary states with ``P(x = 1) = p`` (``torch.bernoulli``; vmap-safe without generator).

    Args:
        p: the probabilities.
        generator: source of randomness (``None``: the global generator, vmap-safe).

    Returns:
        0/1 states shaped like ``p``.
    """
    return torch.bernoulli(p, generator=generator)


def sample_gaussian(
    mean: Tensor, log_var: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    r"""``x ~ N(mean, exp(log_var))`` elementwise (``log_var (*M, n)`` broadcast over the batch).

    $$
    x = \mu + e^{z/2} \epsilon, \qquad \epsilon \sim \mathcal{N}(0, 1)
    $$

    with $\mu$ = ``mean`` and $z$ = ``log_var``.

    Args:
        mean: the means ``(*M, batch, n)``.
        log_var: the log-variances ``(*M, n)``.
        generator: source of randomness (``None``: ``randn_like``, vmap-safe).

    Returns:
        The samples, shaped like ``mean``.
    """
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
    r"""The (C)D log-likelihood gradient of a Bernoulli RBM as an expectation difference.

    $$
    \Delta W = \langle v h^\top \rangle_{+} - \langle v h^\top \rangle_{-}, \quad
    \Delta b = \langle v \rangle_{+} - \langle v \rangle_{-}, \quad
    \Delta c = \langle h \rangle_{+} - \langle h \rangle_{-}
    $$

    with $\langle \cdot \rangle_{+}$ the mean over the positive phase (``v_pos``, ``h_pos``:
    the data and $p(h \mid v)$) and $\langle \cdot \rangle_{-}$ over the negative phase
    (``v_neg``, ``h_neg``: after $k$ Gibbs steps for CD-$k$, the persistent chains for PCD).

    ``dW = <v h^T>_pos - <v h^T>_neg``, ``db = <v>_pos - <v>_neg``, ``dc = <h>_pos - <h>_neg``
    (Hinton's guide, eq. 9 and Sec. 3), each ``<.>`` a mean over the batch axis (-2), so the two
    phases may have different sizes (PCD: ``n_chains`` negatives). Pass hidden *probabilities*
    ``p(h | v)`` as ``h_pos`` (and, as usual, as ``h_neg``): this is the Rao-Blackwellized form of
    the estimator. With exact model samples as ``v_neg`` it is an unbiased estimate of the exact
    gradient ``d mean(log p(v_pos)) / d theta``. The gradient *ascends* the likelihood.

    Args:
        v_pos: positive-phase visible states ``(*M, batch, n_visible)``.
        h_pos: positive-phase hidden probabilities ``(*M, batch, n_hidden)``.
        v_neg: negative-phase visible states ``(*M, n_neg, n_visible)``.
        h_neg: negative-phase hidden probabilities ``(*M, n_neg, n_hidden)``.

    Returns:
        ``{"W": dW, "b": db, "c": dc}``, shaped like the parameters.

    References:
        Hinton, "Training products of experts by minimizing contrastive divergence", Neural
        Computation 14(8), 2002 (CD); Tieleman, "Training restricted Boltzmann machines using
        approximations to the likelihood gradient", ICML 2008 (PCD); Hinton, "A practical
        guide to training restricted Boltzmann machines", 2010, eq. 9 and Sec. 3.
    """
    pos, neg = _expectations(v_pos, h_pos), _expectations(v_neg, h_neg)
    return {k: pos[k] - neg[k] for k in pos}


def gaussian_energy(
    v: Tensor, h: Tensor, W: Tensor, b: Tensor, c: Tensor, log_var: Tensor
) -> Tensor:
    r"""Gaussian-Bernoulli energy (Cho et al. 2011), ``sigma^2 = exp(log_var)``:

    ``E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c^T h - (v / sigma^2)^T W h``.

    $$
    E(v, h) = \sum_i \frac{(v_i - b_i)^2}{2 \sigma_i^2} - \sum_j c_j h_j - \sum_{i,j}
    \frac{v_i}{\sigma_i^2} W_{ij} h_j, \qquad \sigma_i^2 = e^{z_i}
    $$

    with real visible units $v$ = ``v``, binary hidden units $h$ = ``h``, $W$ = ``W``,
    $b$ = ``b``, $c$ = ``c`` and $z$ = ``log_var`` (the log-variances).

    Args:
        v: visible values ``(*M, batch, n_visible)``.
        h: hidden states ``(*M, batch, n_hidden)``.
        W: weights ``(*M, n_visible, n_hidden)``.
        b: visible biases (means) ``(*M, n_visible)``.
        c: hidden biases ``(*M, n_hidden)``.
        log_var: log-variances $z$ of the visible units ``(*M, n_visible)``.

    Returns:
        $E(v, h)$, shape ``(*M, batch)``.

    Note:
        Cho et al.'s interaction term divides by $\sigma_i^2$; Hinton's guide (Sec. 13.2)
        divides by $\sigma_i$. The two are reparametrizations of each other
        ($W_{ij} / \sigma_i$); the code follows Cho et al.

    References:
        Cho, Ilin & Raiko, "Improved learning of Gaussian-Bernoulli restricted Boltzmann
        machines", ICANN 2011, Sec. 2.
    """
    var = torch.exp(_row(log_var))
    quad = ((v - _row(b)) ** 2 / (2 * var)).sum(-1)  # (*M, batch)
    return quad - (h * _row(c)).sum(-1) - (((v / var) @ W) * h).sum(-1)


def gaussian_free_energy(v: Tensor, W: Tensor, b: Tensor, c: Tensor, log_var: Tensor) -> Tensor:
    r"""Gaussian-Bernoulli free energy (Cho et al. 2011), ``sigma^2 = exp(log_var)``:

    ``F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + (v/sigma^2)^T W[:, j])``.

    $$
    F(v) = \sum_i \frac{(v_i - b_i)^2}{2 \sigma_i^2} - \sum_j \log\left(1 + e^{c_j +
    \sum_i v_i W_{ij} / \sigma_i^2}\right), \qquad \sigma_i^2 = e^{z_i}
    $$

    with $v$ = ``v``, $W$ = ``W``, $b$ = ``b``, $c$ = ``c``, $z$ = ``log_var``.

    Args:
        v: visible values ``(*M, batch, n_visible)``.
        W: weights ``(*M, n_visible, n_hidden)``.
        b: visible biases ``(*M, n_visible)``.
        c: hidden biases ``(*M, n_hidden)``.
        log_var: log-variances $z$ ``(*M, n_visible)``.

    Returns:
        $F(v)$, shape ``(*M, batch)``.

    References:
        Cho, Ilin & Raiko, "Improved learning of Gaussian-Bernoulli restricted Boltzmann
        machines", ICANN 2011, Sec. 2.
    """
    var = torch.exp(_row(log_var))
    quad = ((v - _row(b)) ** 2 / (2 * var)).sum(-1)
    return quad - F.softplus((v / var) @ W + _row(c)).sum(-1)  # (*M, batch)


def gaussian_hidden_probs(v: Tensor, W: Tensor, c: Tensor, log_var: Tensor) -> Tensor:
    r"""``p(h_j = 1 | v) = sigmoid(c_j + sum_i v_i W_ij / sigma_i^2)`` (Cho et al. 2011).

    $$
    p(h_j = 1 \mid v) = \sigma\left(c_j + \sum_i \frac{v_i W_{ij}}{\sigma_i^2}\right),
    \qquad \sigma_i^2 = e^{z_i}
    $$

    Args:
        v: visible values ``(*M, batch, n_visible)``.
        W: weights ``(*M, n_visible, n_hidden)``.
        c: hidden biases ``(*M, n_hidden)``.
        log_var: log-variances $z$ ``(*M, n_visible)``.

    Returns:
        The probabilities, ``(*M, batch, n_hidden)``.
    """
    return torch.sigmoid((v / torch.exp(_row(log_var))) @ W + _row(c))


def gaussian_visible_mean(h: Tensor, W: Tensor, b: Tensor) -> Tensor:
    r"""Mean of ``p(v | h) = N(b + W h, sigma^2)``; returns ``(*M, batch, n_visible)``.

    $$
    p(v_i \mid h) = \mathcal{N}\left(v_i;\ b_i + \sum_j W_{ij} h_j,\ \sigma_i^2\right)
    $$

    Args:
        h: hidden states ``(*M, batch, n_hidden)``.
        W: weights ``(*M, n_visible, n_hidden)``.
        b: visible biases ``(*M, n_visible)``.

    Returns:
        The mean $b + W h$, ``(*M, batch, n_visible)``.
    """
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
    r"""CD gradient of a Gaussian-Bernoulli RBM: ``<d(-E)/d theta>_pos - <d(-E)/d theta>_neg``.

    $$
    \Delta\theta = \left\langle -\frac{\partial E}{\partial \theta} \right\rangle_{+} -
    \left\langle -\frac{\partial E}{\partial \theta} \right\rangle_{-}, \qquad
    -\frac{\partial E}{\partial W_{ij}} = \frac{v_i h_j}{\sigma_i^2}, \quad
    -\frac{\partial E}{\partial b_i} = \frac{v_i - b_i}{\sigma_i^2}, \quad
    -\frac{\partial E}{\partial c_j} = h_j, \quad
    -\frac{\partial E}{\partial z_i} = \frac{\tfrac12 (v_i - b_i)^2 - v_i \sum_j W_{ij}
    h_j}{\sigma_i^2}
    $$

    with $\langle\cdot\rangle_{\pm}$ the batch means over the positive (``v_pos``,
    ``h_pos``) and negative (``v_neg``, ``h_neg``) phases and $z_i = \log \sigma_i^2$
    (``log_var``).

    ``d(-E)/dW_ij = v_i h_j / sigma_i^2``, ``d(-E)/db_i = (v_i - b_i) / sigma_i^2``,
    ``d(-E)/dc_j = h_j``, ``d(-E)/d log sigma_i^2 = ((v_i - b_i)^2 / 2 - v_i (W h)_i) / sigma_i^2``
    (Cho, Ilin & Raiko, ICANN 2011). ``with_var=False`` omits the ``log_var`` entry.

    Args:
        v_pos: positive-phase visible values ``(*M, batch, n_visible)``.
        h_pos: positive-phase hidden probabilities ``(*M, batch, n_hidden)``.
        v_neg: negative-phase visible values ``(*M, n_neg, n_visible)``.
        h_neg: negative-phase hidden probabilities ``(*M, n_neg, n_hidden)``.
        W: weights ``(*M, n_visible, n_hidden)``.
        b: visible biases ``(*M, n_visible)``.
        log_var: log-variances ``(*M, n_visible)``.
        with_var: also return the gradient of ``log_var``.

    Returns:
        ``{"W", "b", "c"[, "log_var"]}`` gradients (ascent), shaped like the parameters.

    References:
        Cho, Ilin & Raiko, "Improved learning of Gaussian-Bernoulli restricted Boltzmann
        machines", ICANN 2011, Sec. 2.
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
    r"""Stochastic pseudo-log-likelihood, as scikit-learn's ``BernoulliRBM.score_samples``.

    $$
    \mathrm{PL}(v) = n_v \log \sigma\left(F(\tilde v) - F(v)\right)
    \approx \sum_i \log p(v_i \mid v_{-i})
    $$

    with $F$ = ``free_energy_fn``, $n_v$ the number of visible units and $\tilde v$ the
    example $v$ with one visible unit $i$ flipped ($\tilde v_i = 1 - v_i$).

    For each example one visible index ``i`` (random, or ``flip_index (batch,)``) is flipped,
    ``v~_i = 1 - v_i``, and ``PL(v) = n_visible * log sigmoid(F(v~) - F(v))``, an unbiased
    one-sample estimate of ``sum_i log p(v_i | v_-i)`` (Besag 1975). Returns ``(*M, batch)``.
    ``free_energy_fn`` is e.g. ``rbm.free_energy``.

    Args:
        free_energy_fn: $F$, ``(*M, batch, n_visible) -> (*M, batch)``.
        v: binary visible states ``(*M, batch, n_visible)``.
        flip_index: the flipped unit per example ``(batch,)`` (default: random).
        generator: randomness of the flipped units.

    Returns:
        $\mathrm{PL}(v)$, shape ``(*M, batch)``.

    References:
        Besag, "Statistical analysis of non-lattice data", The Statistician 24(3), 1975.
    """
    n, nv = v.shape[-2], v.shape[-1]
    if flip_index is None:
        flip_index = torch.randint(nv, (n,), generator=generator, device=v.device)
    rows = torch.arange(n, device=v.device)
    v_flip = v.clone()
    v_flip[..., rows, flip_index] = 1 - v_flip[..., rows, flip_index]
    return nv * F.logsigmoid(free_energy_fn(v_flip) - free_energy_fn(v))  # sklearn's formula
