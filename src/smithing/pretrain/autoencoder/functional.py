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
    """``(x~, mask)``: the corrupted inputs and which components were corrupted (bool).

    ``kind`` is a name in :data:`CORRUPTIONS` (``"masking"``, ``"gaussian"``,
    ``"salt_and_pepper"``, ``"none"``); see the module docstring for each formula. ``x`` is not
    modified. Any shape (a leading members axis included).
    """
    fn = CORRUPTIONS.get(kind)
    _check_rate(kind, rate)
    return fn(x, rate, generator)


def corrupt(
    x: Tensor, kind: str = "masking", rate: float = 0.25, generator: torch.Generator | None = None
) -> Tensor:
    """The corrupted inputs ``x~ ~ q(x~ | x)`` (see :func:`corrupt_with_mask`)."""
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
    """Mean over the batch of the summed per-component loss; returns ``(*M,)`` (or ``()``).

    ``a_dec (*M, batch, n_visible)`` is the decoder's pre-activation ``W' h + c``.
    ``"cross_entropy"`` needs the sigmoid decoder and is computed from ``a_dec`` stably,
    ``-x log s(a) - (1 - x) log(1 - s(a)) = softplus(a) - x a``; ``"squared_error"`` is
    ``(x - z)^2`` with ``z`` the decoder's output. ``weights`` (broadcastable to ``a_dec``)
    multiply the per-component losses (emphasis).
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
    """Mean over the batch of ``||J_f(x)||_F^2 = sum_j s'(a_j)^2 sum_i W_ji^2`` (Rifai 2011).

    ``h (*M, batch, n_hidden)`` are the codes of the inputs, ``W (*M, n_hidden, n_visible)``
    the encoder weight, ``a`` the pre-activations (needed for relu). Returns ``(*M,)``.
    """
    check(activation in CODE_ACTIVATIONS, "activation", activation, f"one of {CODE_ACTIVATIONS}")
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
    """The denoising objective ``L(x, g(f(x~))) + contractive * ||J_f(x)||_F^2``, ``(*M,)``.

    ``h = s(x~ W^T + b)``, ``a' = h W_dec^T + c`` with ``W_dec (*M, n_visible, n_hidden)``, or
    ``W_dec = W^T`` when None (tied weights: the gradient wrt ``W`` is the sum of the encoder's
    and the transposed decoder's). See :func:`reconstruction_loss`, :func:`contractive_penalty`.
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
