"""The tensor rules with a scale: fixed (uniform, normal) or from the layer's fans (Glorot, He,
LeCun), one function per paper. Each fills a weight tensor in place by its paper's formula
(stated in its docstring) and registers itself under its name; the structured rules
(orthogonal, identity, sparse, constants) are in :mod:`smithing.init.structured`."""

from __future__ import annotations

import math

import torch
from torch import nn

from smithing._registry import check
from smithing.init.registry import (
    _register,
    fans,
)

__all__ = []

# ----------------------------------------------------------------------------- tensor rules
#
# Every tensor rule is ``fn(w, *, generator, gain, **params) -> None`` and fills ``w`` in place
# (:func:`initialize` validates the arguments, resolves the gain and returns ``w``).


@_register("uniform", description="U(-a, a), a fixed scale (default a = 0.05)")
def _uniform(w: torch.Tensor, *, generator, gain, a: float = 0.05) -> None:
    r"""W_ij ~ U(-a, a): the classic fixed-scale init, Var(W) = a^2 / 3 (no gain).

    $$
    W_{ij} \sim \mathcal{U}(-a, a), \qquad \operatorname{Var}(W_{ij}) = \frac{a^2}{3}
    $$

    with $a$ = ``a`` the half-width, independent of the layer's shape.

    Independent of the layer's fans, so deep or wide networks see their signals shrink or grow
    layer by layer (the problem the fan-based rules fix). Exactly torch.nn.init.uniform_(w, -a,
    a); Keras' ``random_uniform`` has the same default half-width 0.05.

    Args:
        w: the weight, filled in place.
        generator: source of randomness.
        gain: unused (always 1).
        a: the half-width, > 0.

    Returns:
        None (``w`` is filled in place).

    References:
        Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
        networks", AISTATS 2010, section 4.2.1 (U(-1/sqrt(n), 1/sqrt(n)) as the "standard"
        baseline).
    """
    check(a > 0, "a", a, "a positive half-width")
    nn.init.uniform_(w, -a, a, generator=generator)  # W ~ U(-a, a)


@_register("normal", description="N(0, sigma^2), a fixed scale (default sigma = 0.01)")
def _normal(w: torch.Tensor, *, generator, gain, sigma: float = 0.01) -> None:
    r"""W_ij ~ N(0, sigma^2) with a fixed sigma (default 0.01; no gain).

    $$
    W_{ij} \sim \mathcal{N}(0, \sigma^2)
    $$

    with $\sigma$ = ``sigma``, independent of the layer's shape.

    Exactly torch.nn.init.normal_(w, 0, sigma) (torch's default sigma is 1, Keras'
    ``random_normal`` 0.05; ours is Hinton's).

    Args:
        w: the weight, filled in place.
        generator: source of randomness.
        gain: unused (always 1).
        sigma: the standard deviation, > 0.

    Returns:
        None (``w`` is filled in place).

    References:
        Hinton, "A practical guide to training restricted Boltzmann machines", UTML TR
        2010-003, section 8 (N(0, 0.01^2)).
    """
    check(sigma > 0, "sigma", sigma, "a positive standard deviation")
    nn.init.normal_(w, 0.0, sigma, generator=generator)  # W ~ N(0, sigma^2)


@_register(
    "glorot_uniform",
    uses_gain=True,
    description="Glorot & Bengio 2010 normalized init, U(+-gain sqrt(6/(fan_in+fan_out))), gain 1",
)
def _glorot_uniform(w: torch.Tensor, *, generator, gain) -> None:
    r"""W_ij ~ U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)), so
    Var(W) = gain^2 * 2 / (fan_in + fan_out); the paper's rule is gain = 1.

    $$
    W_{ij} \sim \mathcal{U}(-b, b), \quad b = g \sqrt{\frac{6}{n_{in} + n_{out}}}, \qquad
    \operatorname{Var}(W_{ij}) = g^2 \frac{2}{n_{in} + n_{out}}
    $$

    with $g$ = ``gain`` (1 in the paper), $n_{in}$ = fan_in and $n_{out}$ = fan_out of ``w``
    (``in * prod(kernel)`` and ``out * prod(kernel)`` for a weight ``(out, in, *kernel)``).

    The "normalized initialization": the compromise between keeping the forward variance
    (fan_in Var W = 1) and the backward variance (fan_out Var W = 1) of a near-linear unit.
    The gain is torch's extension (``gain="auto"``: tanh 5/3, ...; the Theano deep-learning
    tutorial uses gain=4 for sigmoid layers). Exactly torch.nn.init.xavier_uniform_(w, gain).

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on b (1 in the paper).

    Returns:
        None (``w`` is filled in place).

    References:
        Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
        networks", AISTATS 2010, eq. 16.
    """
    nn.init.xavier_uniform_(w, gain=gain, generator=generator)  # eq. 16


@_register(
    "glorot_normal",
    uses_gain=True,
    description="Glorot & Bengio 2010, N(0, gain^2 2/(fan_in+fan_out)), gain 1",
)
def _glorot_normal(w: torch.Tensor, *, generator, gain) -> None:
    r"""W_ij ~ N(0, gain^2 * 2 / (fan_in + fan_out)); the paper's variance is gain = 1.

    $$
    W_{ij} \sim \mathcal{N}\left(0,\ g^2 \frac{2}{n_{in} + n_{out}}\right)
    $$

    with $g$ = ``gain`` (1 in the paper), $n_{in}$, $n_{out}$ the fans of ``w``.

    The Gaussian with the variance of the normalized initialization (the compromise of the
    forward and backward conditions, eq. 12). Exactly torch.nn.init.xavier_normal_(w, gain).
    Departs from Keras' ``glorot_normal``, a *truncated* normal rescaled to this variance.

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on the standard deviation (1 in the paper).

    Returns:
        None (``w`` is filled in place).

    References:
        Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
        networks", AISTATS 2010, eqs. 12 and 16.
    """
    nn.init.xavier_normal_(w, gain=gain, generator=generator)  # Var = gain^2 2/(fi+fo)


def _fan(w: torch.Tensor, mode: str) -> int:
    check(mode in ("fan_in", "fan_out"), "mode", mode, "'fan_in' or 'fan_out'")
    fan_in, fan_out = fans(w)
    return fan_in if mode == "fan_in" else fan_out


def _scaled_normal(w, gain, mode, generator):
    std = gain / math.sqrt(_fan(w, mode))  # std = gain / sqrt(fan), as torch's kaiming_normal_
    nn.init.normal_(w, 0.0, std, generator=generator)


def _scaled_uniform(w, gain, mode, generator):
    bound = math.sqrt(3.0) * (gain / math.sqrt(_fan(w, mode)))  # Var U(-b, b) = b^2/3 = std^2
    nn.init.uniform_(w, -bound, bound, generator=generator)


@_register(
    "he_normal",
    uses_gain=True,
    paper_gain=math.sqrt(2.0),
    description="He et al. 2015, N(0, gain^2/fan_in), gain sqrt 2 (the rule for ReLU)",
)
def _he_normal(w: torch.Tensor, *, generator, gain, mode="fan_in") -> None:
    r"""W_ij ~ N(0, gain^2 / fan), fan = fan_in (default) or fan_out; the paper's rule is
    gain = sqrt(2), i.e. Var(W) = 2 / fan_in (for ReLU units; sqrt(2 / (1 + a^2)) for a
    leaky ReLU of slope a, eq. 15, is ``gain="auto"`` on a leaky_relu network).

    $$
    W_{ij} \sim \mathcal{N}\left(0,\ \frac{g^2}{n}\right), \qquad g = \sqrt{2} \text{ in
    the paper: } \operatorname{Var}(W_{ij}) = \frac{2}{n_{in}}
    $$

    with $g$ = ``gain`` and $n$ the fan chosen by ``mode`` ($n_{in}$ by default, $n_{out}$
    for ``mode="fan_out"``).

    Same arithmetic as torch.nn.init.kaiming_normal_ (bitwise equal for nonlinearity="relu"),
    with the gain given as a number instead of a nonlinearity name. Departs from Keras'
    ``he_normal``, a *truncated* normal rescaled to this variance.

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on the standard deviation (sqrt 2 in the paper).
        mode: ``"fan_in"`` (forward condition, the default) or ``"fan_out"`` (backward).

    Returns:
        None (``w`` is filled in place).

    References:
        He, Zhang, Ren & Sun, "Delving deep into rectifiers: surpassing human-level performance
        on ImageNet classification", ICCV 2015, eq. 10 (n_l Var(w_l) / 2 = 1), eq. 15 (PReLU).
    """
    _scaled_normal(w, gain, mode, generator)  # eq. 10: Var = 2 / n_l for ReLU


@_register(
    "he_uniform",
    uses_gain=True,
    paper_gain=math.sqrt(2.0),
    description="He et al. 2015, U(+-gain sqrt(3/fan_in)), gain sqrt 2 (the rule for ReLU)",
)
def _he_uniform(w: torch.Tensor, *, generator, gain, mode="fan_in") -> None:
    r"""W_ij ~ U(-b, b), b = gain * sqrt(3 / fan): the uniform law with He et al.'s variance
    gain^2 / fan; the paper's rule is gain = sqrt(2), i.e. b = sqrt(6 / fan_in).

    $$
    W_{ij} \sim \mathcal{U}(-b, b), \quad b = g \sqrt{\frac{3}{n}}, \qquad
    \operatorname{Var}(W_{ij}) = \frac{g^2}{n}
    $$

    with $g$ = ``gain`` ($\sqrt 2$ in the paper, $b = \sqrt{6 / n_{in}}$) and $n$ the fan
    chosen by ``mode``.

    Same arithmetic as torch.nn.init.kaiming_uniform_ (bitwise equal for nonlinearity="relu").

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on b (sqrt 2 in the paper).
        mode: ``"fan_in"`` (default) or ``"fan_out"``.

    Returns:
        None (``w`` is filled in place).

    References:
        He, Zhang, Ren & Sun, "Delving deep into rectifiers", ICCV 2015, eq. 10.
    """
    _scaled_uniform(w, gain, mode, generator)  # eq. 10 with a uniform law


@_register(
    "lecun_normal", uses_gain=True, description="LeCun et al. 1998, N(0, gain^2/fan_in), gain 1"
)
def _lecun_normal(w: torch.Tensor, *, generator, gain, mode="fan_in") -> None:
    r"""W_ij ~ N(0, gain^2 / fan_in); the paper's rule is gain = 1, Var(W) = 1 / fan_in: each
    unit's weighted sum then has unit variance when its inputs do.

    $$
    W_{ij} \sim \mathcal{N}\left(0,\ \frac{g^2}{n}\right), \qquad g = 1 \text{ in the
    paper: } \operatorname{Var}(W_{ij}) = \frac{1}{n_{in}}
    $$

    with $g$ = ``gain`` and $n$ the fan chosen by ``mode`` ($n_{in}$, the paper's $m$, by
    default).

    LeCun et al. meant it for the scaled tanh 1.7159 tanh(2x/3); on any network the name
    means this rule (``gain="auto"`` on a ReLU network gives He's rule). torch has no LeCun
    rule; this is kaiming_normal_'s arithmetic with gain 1. Departs from Keras'
    ``lecun_normal``, a *truncated* normal rescaled to this variance.

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on the standard deviation (1 in the paper).
        mode: ``"fan_in"`` (the paper's m, default) or ``"fan_out"``.

    Returns:
        None (``w`` is filled in place).

    References:
        LeCun, Bottou, Orr & Mueller, "Efficient BackProp", in Neural Networks: Tricks of the
        Trade, Springer 1998, section 4.6 (sigma_w = m^(-1/2)).
    """
    _scaled_normal(w, gain, mode, generator)  # sigma_w = gain m^(-1/2) (section 4.6)


@_register(
    "lecun_uniform",
    uses_gain=True,
    description="LeCun et al. 1998, U(+-gain sqrt(3/fan_in)), gain 1",
)
def _lecun_uniform(w: torch.Tensor, *, generator, gain, mode="fan_in") -> None:
    r"""W_ij ~ U(-b, b), b = gain * sqrt(3 / fan_in): LeCun et al.'s variance gain^2 / fan_in
    with a uniform law; the paper's rule is gain = 1, Var(W) = 1 / fan_in. (Gain 1/sqrt(3),
    b = 1/sqrt(fan_in), is torch's nn.Linear default and Glorot & Bengio's "standard" init.)

    $$
    W_{ij} \sim \mathcal{U}(-b, b), \quad b = g \sqrt{\frac{3}{n}}, \qquad
    \operatorname{Var}(W_{ij}) = \frac{g^2}{n}
    $$

    with $g$ = ``gain`` (1 in the paper) and $n$ the fan chosen by ``mode`` ($n_{in}$ by
    default).

    Args:
        w: the weight ``(out, in, *kernel)``, filled in place.
        generator: source of randomness.
        gain: the factor on b (1 in the paper).
        mode: ``"fan_in"`` (default) or ``"fan_out"``.

    Returns:
        None (``w`` is filled in place).

    References:
        LeCun, Bottou, Orr & Mueller, "Efficient BackProp", 1998, section 4.6.
    """
    _scaled_uniform(w, gain, mode, generator)  # Var = gain^2 / fan_in
