"""Autoencoders' equations as pure functions on tensors: the corruption processes, the encoder, the
reconstruction losses, the contractive penalty and the denoising loss (the package docstring has
the formulas)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from smithing._registry import Registry, check

__all__ = [
    "CODE_ACTIVATIONS",
    "CORRUPTIONS",
    "contractive_penalty",
    "corrupt",
    "corrupt_with_mask",
    "dae_loss",
    "reconstruction_loss",
]

# ------------------------------------------------------------------ corruption


def _uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1) noise shaped like ``x`` (``rand_like`` without a generator: vmap-safe)."""
    if generator is None:
        return torch.rand_like(x)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=generator.device)
    return u.to(x.device)


def _normal(x: Tensor, generator: torch.Generator | None) -> Tensor:
    if generator is None:
        return torch.randn_like(x)
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=generator.device)
    return z.to(x.device)


def _no_corruption(x, rate, generator):
    return x, torch.zeros_like(x, dtype=torch.bool)


def _masking(x, rate, generator):
    mask = _uniform(x, generator) < rate  # component destroyed with probability rate
    return torch.where(mask, torch.zeros_like(x), x), mask  # x~_i = 0 (JMLR 2010 Sec. 4.3)


def _gaussian(x, rate, generator):
    return x + rate * _normal(x, generator), torch.ones_like(x, dtype=torch.bool)  # N(x, s^2 I)


def _salt_and_pepper(x, rate, generator, low=0.0, high=1.0):
    mask = _uniform(x, generator) < rate  # component corrupted with probability rate
    salt = _uniform(x, generator) < 0.5  # then min or max with probability 1/2 each
    noise = torch.where(salt, torch.full_like(x, high), torch.full_like(x, low))
    return torch.where(mask, noise, x), mask


CORRUPTIONS: Registry[Callable] = Registry("corruption")
CORRUPTIONS.register("none", _no_corruption, description="no corruption (a plain autoencoder)")
CORRUPTIONS.register(
    "masking", _masking, description="each component set to 0 with probability rate"
)
CORRUPTIONS.register(
    "gaussian", _gaussian, description="additive isotropic Gaussian noise, std = rate"
)
CORRUPTIONS.register(
    "salt_and_pepper",
    _salt_and_pepper,
    description="each component set to 0 or 1 (1/2 each) with probability rate",
)


def _check_rate(kind: str, rate: float) -> None:
    if kind == "gaussian":
        check(rate >= 0 and math.isfinite(rate), "rate", rate, "a standard deviation >= 0")
    elif kind != "none":
        check(0 <= rate <= 1, "rate", rate, "a probability in [0, 1]")


def corrupt_with_mask(
    x: Tensor, kind: str = "masking", rate: float = 0.25, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    r"""``(x~, mask)``: the corrupted inputs and which components were corrupted (bool).

    $$
    \text{masking: } \tilde x_i = \begin{cases} 0 & \text{w.p. } \nu \\ x_i &
    \text{otherwise} \end{cases} \qquad
    \text{gaussian: } \tilde x_i = x_i + \nu \epsilon_i,\ \epsilon_i \sim
    \mathcal{N}(0, 1) \qquad
    \text{salt and pepper: } \tilde x_i = \begin{cases} 0 \text{ or } 1 \text{ (1/2 each)} &
    \text{w.p. } \nu \\ x_i & \text{otherwise} \end{cases}
    $$

    with $x_i$ the components of ``x``, $\nu$ = ``rate`` (a probability, or the noise's
    standard deviation for ``"gaussian"``), each component independently. ``kind`` is a name in
    :data:`CORRUPTIONS` (``"masking"``, ``"gaussian"``, ``"salt_and_pepper"``, ``"none"``). ``x``
    is not modified. Any shape (a leading members axis included).

    Args:
        x: the clean inputs.
        kind: the corruption's name in :data:`CORRUPTIONS`.
        rate: $\nu$: a probability in ``[0, 1]``, or a standard deviation ``>= 0`` for
            ``"gaussian"``.
        generator: source of randomness (``None``: ``rand_like``, vmap-safe).

    Returns:
        ``(x_tilde, mask)``: the corrupted inputs and the bool mask of corrupted components
        (all ``True`` for ``"gaussian"``, all ``False`` for ``"none"``), both shaped like ``x``.

    Note:
        Masking draws each component independently (the Theano tutorial's binomial mask)
        instead of zeroing exactly $\nu d$ of the $d$ components chosen at random (Vincent et
        al. 2008).

    References:
        Vincent, Larochelle, Lajoie, Bengio & Manzagol, "Stacked denoising autoencoders", JMLR
        11, 2010, Sec. 4.3.
    """
    fn = CORRUPTIONS.get(kind)
    _check_rate(kind, rate)
    return fn(x, rate, generator)


def corrupt(
    x: Tensor, kind: str = "masking", rate: float = 0.25, generator: torch.Generator | None = None
) -> Tensor:
    r"""The corrupted inputs ``x~ ~ q(x~ | x)`` (see :func:`corrupt_with_mask`).

    $$
    \tilde x \sim q_{\nu}(\tilde x \mid x)
    $$

    with $q_\nu$ the corruption ``kind`` at rate $\nu$ = ``rate`` (masking, additive Gaussian,
    salt-and-pepper: the formulas are in :func:`corrupt_with_mask`).

    Args:
        x: the clean inputs.
        kind: the corruption's name in :data:`CORRUPTIONS`.
        rate: $\nu$ (probability, or standard deviation for ``"gaussian"``).
        generator: source of randomness.

    Returns:
        $\tilde x$, shaped like ``x``.

    References:
        Vincent, Larochelle, Bengio & Manzagol, "Extracting and composing robust features with
        denoising autoencoders", ICML 2008, Sec. 2.3; Vincent et al., JMLR 11, 2010, Sec. 4.3.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> x_tilde = corrupt(torch.ones(1000), "masking", 0.25, generator=g)
        >>> bool(((x_tilde == 0) | (x_tilde == 1)).all()), abs(float(x_tilde.mean()) - 0.75) < 0.05
        (True, True)
    """
    return corrupt_with_mask(x, kind, rate, generator)[0]


# ------------------------------------------------------------------ pure functions


def _sigmoid_d(h: Tensor, a: Tensor) -> Tensor:
    return h * (1 - h)  # s'(a) = h (1 - h)


def _tanh_d(h: Tensor, a: Tensor) -> Tensor:
    return 1 - h * h  # s'(a) = 1 - h^2


def _relu_d(h: Tensor, a: Tensor) -> Tensor:
    return (a > 0).to(h.dtype)  # s'(a) = 1[a > 0]


#: code activations: name -> (function, derivative as a function of (output, pre-activation))
CODE_ACTIVATIONS: dict[str, tuple[Callable[[Tensor], Tensor], Callable]] = {
    "sigmoid": (torch.sigmoid, _sigmoid_d),
    "tanh": (torch.tanh, _tanh_d),
    "relu": (torch.relu, _relu_d),
}
DECODERS = ("sigmoid", "linear")
LOSSES = ("cross_entropy", "squared_error")


def _row(v: Tensor) -> Tensor:
    """A bias ``(*M, n)`` made broadcastable against ``(*M, batch, n)``."""
    return v.unsqueeze(-2) if v.dim() >= 2 else v


def _t(W: Tensor) -> Tensor:
    return W.transpose(-1, -2)


def _encode(x: Tensor, W: Tensor, b: Tensor, activation: str) -> tuple[Tensor, Tensor]:
    a = x @ _t(W) + _row(b)  # (*M, batch, n_hidden)
    return CODE_ACTIVATIONS[activation][0](a), a


def reconstruction_loss(
    x: Tensor,
    a_dec: Tensor,
    loss: str = "cross_entropy",
    decoder: str = "sigmoid",
    weights: Tensor | None = None,
) -> Tensor:
    r"""Mean over the batch of the summed per-component loss; returns ``(*M,)`` (or ``()``).

    $$
    L_H(x, z) = -\sum_i \left[x_i \log z_i + (1 - x_i) \log(1 - z_i)\right]
    = \sum_i \left[\operatorname{softplus}(a_i) - x_i a_i\right], \qquad
    L_2(x, z) = \sum_i (x_i - z_i)^2
    $$

    with $x$ = ``x``, $a$ = ``a_dec`` the decoder's pre-activation $W' h + c$, and $z$ the
    decoder's output ($z = \sigma(a)$ for ``decoder="sigmoid"``, $z = a$ for ``"linear"``).
    The cross-entropy $L_H$ needs the sigmoid decoder and is computed from $a$ (stable). With
    ``weights`` $\omega$ each term $\ell_i$ is multiplied by $\omega_i$; the emphasized
    denoising autoencoder passes $\omega_i = \alpha$ on the corrupted components and
    $\beta$ on the others:

    $$
    L = \alpha \sum_{i \in \mathcal{J}(\tilde x)} \ell_i + \beta \sum_{i \notin
    \mathcal{J}(\tilde x)} \ell_i
    $$

    ($\mathcal{J}(\tilde x)$ the corrupted components). The result is the mean of $L$ over
    the batch.

    Args:
        x: the clean targets ``(*M, batch, n_visible)``.
        a_dec: the decoder's pre-activation ``(*M, batch, n_visible)``.
        loss: ``"cross_entropy"`` ($L_H$) or ``"squared_error"`` ($L_2$).
        decoder: ``"sigmoid"`` or ``"linear"``.
        weights: per-component weights $\omega$ broadcastable to ``a_dec`` (emphasis), or
            ``None``.

    Returns:
        The mean loss, ``(*M,)`` (or ``()`` without a members axis).

    References:
        Vincent et al., "Stacked denoising autoencoders", JMLR 11, 2010, Sec. 2.3 (the losses)
        and Sec. 4.4 (emphasis).

    Examples:
        >>> import torch
        >>> reconstruction_loss(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2))  # 2 log 2
        tensor(1.3863)
    """
    check(loss in LOSSES, "loss", loss, f"one of {LOSSES}")
    check(decoder in DECODERS, "decoder", decoder, f"one of {DECODERS}")
    if loss == "cross_entropy":
        check(decoder == "sigmoid", "decoder", decoder, "'sigmoid' for the cross-entropy loss")
        per = F.softplus(a_dec) - x * a_dec  # L_H: -x log z - (1-x) log(1-z), z = s(a)
    else:
        z = torch.sigmoid(a_dec) if decoder == "sigmoid" else a_dec
        per = (x - z) ** 2  # L_2 = ||x - z||^2
    if weights is not None:
        per = per * weights  # alpha on corrupted, beta on the other components (Sec. 4.4)
    return per.sum(-1).mean(-1)  # (*M,)


def contractive_penalty(h: Tensor, W: Tensor, activation: str = "sigmoid", a=None) -> Tensor:
    r"""Mean over the batch of ``||J_f(x)||_F^2 = sum_j s'(a_j)^2 sum_i W_ji^2`` (Rifai 2011).

    $$
    \lVert J_f(x) \rVert_F^2 = \sum_{j} s'(a_j)^2 \sum_{i} W_{ji}^2, \qquad
    J_f(x) = \frac{\partial h}{\partial x} = \operatorname{diag}(s'(a))\, W
    $$

    with $h = s(a)$ the codes ``h``, $a = W x + b$ their pre-activations ``a``, $W$ = ``W``
    the encoder weight and $s'$ the derivative of the code activation: $h_j (1 - h_j)$ for
    sigmoid (Rifai et al.'s closed form), $1 - h_j^2$ for tanh, $\mathbb{1}[a_j > 0]$ for relu.

    Args:
        h: the codes of the inputs ``(*M, batch, n_hidden)``.
        W: the encoder weight ``(*M, n_hidden, n_visible)``.
        activation: ``"sigmoid"``, ``"tanh"`` or ``"relu"``.
        a: the pre-activations ``(*M, batch, n_hidden)`` (needed for relu).

    Returns:
        The batch mean of $\lVert J_f(x) \rVert_F^2$, ``(*M,)``.

    References:
        Rifai, Vincent, Muller, Glorot & Bengio, "Contractive auto-encoders: explicit
        invariance during feature extraction", ICML 2011, Sec. 2 (eq. 2 and the sigmoid closed
        form).
    """
    names = tuple(CODE_ACTIVATIONS)
    check(activation in CODE_ACTIVATIONS, "activation", activation, f"one of {names}")
    d = CODE_ACTIVATIONS[activation][1](h, a)  # s'(a) (*M, batch, n_hidden)
    row_norms = (W * W).sum(-1)  # sum_i W_ji^2 (*M, n_hidden)
    return (d * d * _row(row_norms)).sum(-1).mean(-1)  # Rifai 2011: sum_j s'^2 ||W_j||^2 (*M,)


def dae_loss(
    x: Tensor,
    x_tilde: Tensor,
    W: Tensor,
    b: Tensor,
    c: Tensor,
    W_dec: Tensor | None = None,
    *,
    activation: str = "sigmoid",
    decoder: str = "sigmoid",
    loss: str = "cross_entropy",
    weights: Tensor | None = None,
    contractive: float = 0.0,
) -> Tensor:
    r"""The denoising objective ``L(x, g(f(x~))) + contractive * ||J_f(x)||_F^2``, ``(*M,)``.

    $$
    h = s(W \tilde x + b), \qquad a' = W' h + c, \qquad
    \mathcal{L} = L\left(x, a'\right) + \lambda \lVert J_f(x) \rVert_F^2
    $$

    with $\tilde x$ = ``x_tilde`` (the corrupted input), $x$ = ``x`` (the clean target),
    $W$ = ``W``, $b$ = ``b``, $c$ = ``c``, $W'$ = ``W_dec`` or $W^\top$ when ``None`` (tied
    weights: the gradient in $W$ is the sum of the encoder's and the transposed decoder's),
    $L$ the reconstruction loss (:func:`reconstruction_loss`) and $\lambda$ = ``contractive``
    (:func:`contractive_penalty`, at the clean $x$).

    Args:
        x: the clean inputs ``(*M, batch, n_visible)``.
        x_tilde: the corrupted inputs, same shape.
        W: the encoder weight ``(*M, n_hidden, n_visible)``.
        b: the code biases ``(*M, n_hidden)``.
        c: the reconstruction biases ``(*M, n_visible)``.
        W_dec: the untied decoder weight ``(*M, n_visible, n_hidden)``, or ``None`` (tied).
        activation: the code activation $s$.
        decoder: ``"sigmoid"`` or ``"linear"``.
        loss: ``"cross_entropy"`` or ``"squared_error"``.
        weights: per-component weights (emphasis), or ``None``.
        contractive: $\lambda \ge 0$.

    Returns:
        $\mathcal{L}$, ``(*M,)``.

    References:
        Vincent et al., "Stacked denoising autoencoders", JMLR 11, 2010, Sec. 3; Rifai et al.,
        "Contractive auto-encoders", ICML 2011, eq. 2.
    """
    h, a = _encode(x_tilde, W, b, activation)  # (*M, batch, n_hidden)
    Wd = _t(W) if W_dec is None else W_dec  # (*M, n_visible, n_hidden)
    a_dec = h @ _t(Wd) + _row(c)  # (*M, batch, n_visible)
    out = reconstruction_loss(x, a_dec, loss, decoder, weights)
    if contractive:
        hc, ac = (h, a) if x_tilde is x else _encode(x, W, b, activation)  # J_f at clean x
        out = out + contractive * contractive_penalty(
            hc, W, activation, ac
        )  # + lambda ||J_f(x)||_F^2 (Rifai 2011)
    return out
