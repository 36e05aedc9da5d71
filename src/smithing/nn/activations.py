"""Activation functions by name, with the gain that fan-in/fan-out initializers use.

The gain is the factor by which an initializer's standard deviation is multiplied so that the
activation keeps the variance of its input (``torch.nn.init.calculate_gain``'s convention;
softsign has no entry there and uses 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from smithing._registry import Registry

__all__ = ["Activation", "ACTIVATIONS", "get", "make", "gain", "torch_gain_name", "derivative"]


@dataclass(frozen=True)
class Activation:
    name: str
    module: Callable[[], nn.Module]
    gain: float
    saturating: bool  # has asymptotes (sigmoid, tanh, softsign): saturation is measurable
    description: str


ACTIVATIONS: Registry[Activation] = Registry("activation")


def _add(name: str, module: Callable[[], nn.Module], gain: float, saturating: bool, desc: str):
    ACTIVATIONS.register(name, Activation(name, module, gain, saturating, desc), description=desc)


_add("sigmoid", nn.Sigmoid, 1.0, True, "logistic 1/(1+e^-x), derivative <= 1/4")
_add("tanh", nn.Tanh, 5.0 / 3.0, True, "hyperbolic tangent, derivative <= 1")
_add("relu", nn.ReLU, 2.0**0.5, False, "rectified linear max(0, x)")
_add("softsign", nn.Softsign, 1.0, True, "x/(1+|x|) (Glorot & Bengio 2010)")
_add("linear", nn.Identity, 1.0, False, "identity (a linear layer)")
_add(
    "leaky_relu", lambda: nn.LeakyReLU(0.01), (2.0 / (1 + 0.01**2)) ** 0.5, False, "max(x, 0.01 x)"
)
_add("elu", nn.ELU, 1.0, False, "exponential linear unit (Clevert et al. 2016)")
_add("softplus", nn.Softplus, 1.0, False, "log(1 + e^x)")


def get(name: str) -> Activation:
    return ACTIVATIONS.get(name)


def make(name: str) -> nn.Module:
    return ACTIVATIONS.get(name).module()


def gain(name: str) -> float:
    return ACTIVATIONS.get(name).gain


def torch_gain_name(name: str) -> str:
    """The nonlinearity name torch.nn.init understands for ``name``."""
    return {
        "linear": "linear",
        "sigmoid": "sigmoid",
        "tanh": "tanh",
        "relu": "relu",
        "leaky_relu": "leaky_relu",
    }.get(name, "linear")


def derivative(name: str, x: torch.Tensor) -> torch.Tensor:
    """d act(x) / dx, by autograd (used by the vanishing-gradient figure)."""
    x = x.detach().clone().requires_grad_(True)
    y = make(name)(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    return g
