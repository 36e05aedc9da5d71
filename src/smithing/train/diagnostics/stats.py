"""Layer selection, activation statistics, histograms and the gradient-flow warnings; the
one-pass functions :func:`layer_gradient_norms` and :func:`activation_stats` (see
:mod:`smithing.train.diagnostics` for the thresholds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from smithing._registry import check

__all__ = [
    "ExplodingGradientWarning",
    "GradientWarning",
    "LayerSelector",
    "NonFiniteGradientWarning",
    "SIGMOID_SATURATION",
    "TANH_SATURATION",
    "VanishingGradientWarning",
    "activation_stats",
    "is_activation",
    "layer_gradient_norms",
]

SIGMOID_SATURATION = (0.01, 0.99)
TANH_SATURATION = 0.99

LayerSelector = tuple[type[nn.Module], ...] | Callable[[str, nn.Module], bool]

_RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.PReLU, nn.RReLU, nn.CELU, nn.SELU)


class GradientWarning(UserWarning):
    """Base class of the gradient-flow warnings."""


class VanishingGradientWarning(GradientWarning):
    """The first layer's gradient norm is a tiny fraction of the last layer's."""


class ExplodingGradientWarning(GradientWarning):
    """The global gradient norm grew by a large factor or passed a threshold."""


class NonFiniteGradientWarning(GradientWarning):
    """A gradient (or activation) is NaN or infinite; the message names the layer."""


# ----------------------------------------------------------------------------- helpers


def _select(model: nn.Module, layers: LayerSelector) -> list[tuple[str, nn.Module]]:
    if isinstance(layers, type):
        layers = (layers,)
    if isinstance(layers, tuple):
        types = layers

        def match(_n, m):
            return isinstance(m, types)
    else:
        check(callable(layers), "layers", layers, "a tuple of module types or a predicate")
        match = layers
    return [(n, m) for n, m in model.named_modules() if n and match(n, m)]


def is_activation(module: nn.Module) -> bool:
    """Whether ``module`` is an activation (a ``torch.nn.modules.activation`` class or Identity)."""
    return type(module).__module__ == "torch.nn.modules.activation" or isinstance(
        module, nn.Identity
    )


def _activation_kind(module: nn.Module) -> str:
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, (nn.Tanh, nn.Softsign)):
        return "tanh"
    if isinstance(module, _RECTIFIERS):
        return "rectifier"
    return "other"


def _moments(t: torch.Tensor) -> dict[str, torch.Tensor]:
    t = t.detach().float()
    return {"mean": t.mean(), "std": t.std(correction=0)}


def _activation_tensors(a: torch.Tensor, kind: str) -> dict[str, torch.Tensor]:
    """Mean, std and saturation of activations ``a`` (batch, ...) as 0-d tensors (no sync)."""
    a = a.detach().float()
    out = _moments(a)
    if kind == "sigmoid":
        lo, hi = SIGMOID_SATURATION
        out["saturated"] = ((a < lo) | (a > hi)).float().mean()  # a < 0.01 or a > 0.99
    elif kind == "tanh":
        out["saturated"] = (a.abs() > TANH_SATURATION).float().mean()  # |a| > 0.99
    elif kind == "rectifier":
        off = (a <= 0).reshape(a.shape[0], -1)  # (batch, units)
        out["dead"] = off.all(dim=0).float().mean()  # unit off for every example
        out["zero"] = off.float().mean()
    return out


def _histogram(t: torch.Tensor, bins: int, kind: str = "other") -> dict[str, torch.Tensor]:
    t = t.detach().float().flatten()
    if kind == "sigmoid":
        lo, hi = 0.0, 1.0
    elif kind == "tanh":
        lo, hi = -1.0, 1.0
    else:
        finite = t[torch.isfinite(t)]
        lo, hi = (finite.min().item(), finite.max().item()) if finite.numel() else (0.0, 1.0)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    return {
        "counts": torch.histc(t, bins=bins, min=lo, max=hi),  # (bins,)
        "edges": torch.linspace(lo, hi, bins + 1),  # (bins + 1,)
    }


# ----------------------------------------------------------------------------- functions


def layer_gradient_norms(
    model: nn.Module,
    loss: torch.Tensor,
    *,
    layers: LayerSelector = (nn.Linear,),
    retain_graph: bool = True,
) -> dict[str, float]:
    """``{layer name: ||dL/dW||_F}`` for the weight of every selected layer, in module order.

    Uses ``torch.autograd.grad`` so ``.grad`` is left untouched; a layer the loss does not
    depend on gets 0. ``retain_graph=True`` lets the caller still call ``loss.backward()``.
    """
    selected = [
        (n, w) for n, m in _select(model, layers) if isinstance(w := m.weight, torch.Tensor)
    ]
    check(len(selected) > 0, "layers", layers, "a selector matching at least one layer")
    weights = [w for _, w in selected]
    grads = torch.autograd.grad(loss, weights, retain_graph=retain_graph, allow_unused=True)
    norms = [
        torch.linalg.vector_norm(g) if g is not None else torch.zeros((), device=loss.device)
        for g in grads
    ]
    return dict(zip([n for n, _ in selected], torch.stack(norms).tolist(), strict=True))


def activation_stats(
    model: nn.Module,
    x: torch.Tensor,
    *,
    layers: LayerSelector = (nn.Linear,),
    bins: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Statistics of one forward pass of ``x``, per module in forward order.

    For each selected layer (Linear by default): ``mean`` and ``std`` of its output (the
    pre-activation). For each activation module: ``mean``, ``std`` and ``saturated`` (sigmoid,
    tanh, softsign) or ``dead`` and ``zero`` (rectifiers), thresholds as in the module
    docstring. With ``bins``, also ``hist`` (counts) and ``edges`` tensors. Runs under
    ``torch.no_grad`` in the model's current mode (call ``model.eval()`` first to switch
    dropout off).
    """
    if bins is not None:
        check(isinstance(bins, int) and bins > 0, "bins", bins, "a positive int or None")
    watched = {n: ("layer", m) for n, m in _select(model, layers)}
    for n, m in model.named_modules():
        if n and n not in watched and is_activation(m):
            watched[n] = ("activation", m)
    captured: dict[str, dict[str, torch.Tensor]] = {}

    def make_hook(name, role, module):
        kind = _activation_kind(module) if role == "activation" else "other"

        def hook(_m, _inputs, output):
            if not isinstance(output, torch.Tensor):
                return
            stats = _activation_tensors(output, kind) if role == "activation" else _moments(output)
            if bins is not None:
                h = _histogram(output, bins, kind)
                stats["hist"], stats["edges"] = h["counts"], h["edges"]
            captured[name] = stats

        return hook

    handles = [m.register_forward_hook(make_hook(n, r, m)) for n, (r, m) in watched.items()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {
        name: {k: (v.item() if v.dim() == 0 else v) for k, v in stats.items()}
        for name, stats in captured.items()
    }
