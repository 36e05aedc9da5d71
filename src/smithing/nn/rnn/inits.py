"""Recurrent weight initializations by name: Gaussian, orthogonal (Saxe et al. 2014), identity and
scaled identity (Le, Jaitly & Hinton 2015)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from smithing import init as _init
from smithing._registry import Registry, check

__all__ = [
    "RECURRENT_INITS",
    "init_recurrent_",
]

# ------------------------------------------------------------------------------------------------
# recurrent initializations
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecurrentInit:
    """A rule for ``W_hh``: ``fn(weight, scale, generator)`` fills the (H, H) weight in place."""

    name: str
    fn: Callable[[Tensor, float, torch.Generator | None], None]
    default_scale: float
    description: str


RECURRENT_INITS: Registry[RecurrentInit] = Registry("recurrent init")


def _add_init(name: str, default_scale: float, description: str):
    def deco(fn):
        RECURRENT_INITS.register(
            name, RecurrentInit(name, fn, default_scale, description), description=description
        )
        return fn

    return deco


@_add_init("gaussian", 1.0, "W_hh ~ N(0, (scale/sqrt(H))^2): spectral radius ~ scale")
def _gaussian(w: Tensor, scale: float, generator) -> None:
    sigma = scale / math.sqrt(w.shape[-1])  # std = scale / sqrt(H): radius ~ scale (circular law)
    _init.initialize(w, "normal", generator=generator, sigma=sigma)


@_add_init("orthogonal", 1.0, "W_hh = scale * Q, Q orthogonal (Saxe et al. 2014)")
def _orthogonal(w: Tensor, scale: float, generator) -> None:
    _init.initialize(w, "orthogonal", generator=generator, gain=scale)  # W = scale * Q


@_add_init("identity", 1.0, "W_hh = I (IRNN, Le, Jaitly & Hinton 2015)")
def _identity(w: Tensor, scale: float, generator) -> None:
    check(scale == 1.0, "scale", scale, "1 for 'identity' (use 'scaled-identity')")
    _init.initialize(w, "identity", generator=generator)  # W = I


@_add_init("scaled-identity", 0.01, "W_hh = scale * I (Le et al. 2015's scaled identity)")
def _scaled_identity(w: Tensor, scale: float, generator) -> None:
    _init.initialize(w, "identity", generator=generator, scale=scale)  # W = scale * I


def init_recurrent_(
    weight: Tensor,
    name: str,
    *,
    scale: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the recurrent weight ``(H, H)`` (or ``(members, H, H)``) with rule ``name``.

    $$
    \text{gaussian: } W_{ij} \sim \mathcal{N}\left(0, \tfrac{\gamma^2}{H}\right), \quad
    \text{orthogonal: } W = \gamma Q,\ Q^\top Q = I, \quad
    \text{identity: } W = I, \quad
    \text{scaled-identity: } W = \gamma I
    $$

    with $W$ = ``weight`` ``(H, H)``, $\gamma$ = ``scale`` (the rule's default when ``None``:
    1, or 0.01 for ``scaled-identity``). By the circular law the Gaussian rule's spectral radius
    is about $\gamma$.

    Args:
        weight: the recurrent weight ``(H, H)`` or ``(members, H, H)``, filled in place.
        name: a rule of :data:`RECURRENT_INITS`.
        scale: $\gamma > 0$, or ``None`` for the rule's default.
        generator: source of randomness.

    Returns:
        ``weight``.

    References:
        Le, Jaitly & Hinton, "A simple way to initialize recurrent networks of rectified linear
        units", arXiv:1504.00941, 2015 (identity, scaled identity); Saxe, McClelland & Ganguli,
        "Exact solutions to the nonlinear dynamics of learning in deep linear neural networks",
        ICLR 2014 (orthogonal).
    """
    spec = RECURRENT_INITS.get(name)
    scale = spec.default_scale if scale is None else scale
    check(
        isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0,
        "scale",
        scale,
        "a positive number",
    )
    check(
        weight.dim() in (2, 3) and weight.shape[-1] == weight.shape[-2],
        "weight",
        tuple(weight.shape),
        "a square (H, H) or (members, H, H) recurrent weight",
    )
    with torch.no_grad():
        for w in weight.reshape(-1, *weight.shape[-2:]):  # (H, H) views, member by member
            spec.fn(w, float(scale), generator)
    return weight
