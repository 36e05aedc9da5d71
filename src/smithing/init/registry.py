"""The initializer registry: :class:`Initializer` (one rule's metadata), ``INITIALIZERS``,
``PRETRAINED``, :func:`names` and :func:`fans`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from smithing._registry import Registry, _first_line, check

__all__ = [
    "INITIALIZERS",
    "Initializer",
    "PRETRAINED",
    "fans",
    "names",
]

LayerSelector = tuple[type[nn.Module], ...] | Callable[[str, nn.Module], bool]


@dataclass(frozen=True)
class Initializer:
    """A registered initialization rule.

    ``fn`` is ``fn(weight, *, generator, gain, **params)`` (in place) for a tensor rule, or
    ``fn(model, layers, *, generator, gain, bias, activation, **params)`` for a model rule
    (``layers`` is the list of selected ``(name, module)`` pairs).
    """

    name: str
    fn: Callable[..., object]
    model_level: bool
    uses_gain: bool
    paper_gain: float
    description: str


INITIALIZERS: Registry[Initializer] = Registry("initializer")
PRETRAINED: Registry[Callable[..., object]] = Registry("pretrained source")


def _register(name: str, *, model_level=False, uses_gain=False, paper_gain=1.0, description=""):
    def deco(fn):
        desc = description or _first_line(fn.__doc__)  # "" for an undocumented rule
        INITIALIZERS.register(
            name, Initializer(name, fn, model_level, uses_gain, paper_gain, desc), description=desc
        )
        return fn

    return deco


def names() -> list[str]:
    """Names of the registered initializers."""
    return INITIALIZERS.names()


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight ``(out, in, *kernel)`` (torch's convention)."""
    check(weight.dim() >= 2, "weight", tuple(weight.shape), "a tensor with at least 2 dimensions")
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive
