"""Layer-sequential unit-variance initialization (Mishkin & Matas, "All you need is a good init",
ICLR 2016): :func:`lsuv`, and its model-level rule ``"lsuv"``."""

from __future__ import annotations

import contextlib
import math
from typing import Any, cast

import torch
from torch import nn

from smithing._registry import check
from smithing.init.registry import (
    LayerSelector,
    _register,
)
from smithing.init.resolve import (
    _check_bias,
    _set_bias,
    initialize,
    select_layers,
)

__all__ = [
    "lsuv",
]

# ----------------------------------------------------------------------------- LSUV


class _StopForward(Exception):
    pass


@contextlib.contextmanager
def _deterministic(model: nn.Module):
    """Enter the ``deterministic()`` context of every module that has one (DropConnect)."""
    with contextlib.ExitStack() as stack:
        for m in model.modules():
            enter = getattr(m, "deterministic", None)
            if callable(enter):
                stack.enter_context(enter())
        yield


@_register(
    "lsuv",
    model_level=True,
    description="Mishkin & Matas 2016, orthogonal init then unit pre-activation variance per layer",
)
def _lsuv_rule(
    model,
    selected,
    *,
    generator,
    gain,
    bias,
    activation,
    data: torch.Tensor | None = None,
    tol: float = 0.1,
    max_iter: int = 10,
    pre_init: str = "orthogonal",
) -> None:
    r"""Layer-sequential unit-variance init: ``pre_init`` (orthogonal, gain 1 by default), then
    each selected layer's weight rescaled, in forward order, ``W_L <- W_L / sqrt(Var(B_L))``
    until its pre-activation output ``B_L`` on ``data`` has variance 1 (see :func:`lsuv`).

    $$
    W_L \leftarrow \frac{W_L}{\sqrt{\operatorname{Var}(B_L)}} \quad \text{until} \quad
    \left\lvert \operatorname{Var}(B_L) - 1 \right\rvert < \epsilon_{\text{tol}} \ \text{(at
    most } T_{\max} \text{ times)}, \qquad L = 1, 2, \dots \text{ in forward order}
    $$

    with $W_L$ the weight of layer $L$ (after the orthonormal pre-initialization),
    $\operatorname{Var}(B_L)$ the variance over all examples and units of its pre-activation
    output on the batch ``data``, $\epsilon_{\text{tol}}$ = ``tol`` and $T_{\max}$ =
    ``max_iter``.

    Args:
        model: the model.
        selected: its selected ``(name, module)`` layers.
        generator: randomness of ``pre_init``.
        gain: the gain of ``pre_init`` (default its paper's rule; it does not change the result
            beyond rounding, since every layer is rescaled afterwards).
        activation: the activation ``gain="auto"`` reads.
        bias: the bias policy, applied before the rescaling.
        data: a batch of inputs (required).
        tol: the paper's Tol_var (0.1).
        max_iter: the paper's T_max (10).
        pre_init: the tensor rule applied first.

    Returns:
        None (the layers are set in place; :func:`lsuv` returns the variances).

    References:
        Mishkin & Matas, "All you need is a good init", ICLR 2016, Algorithm 1.
    """
    if data is None:
        raise ValueError(
            "data=None is invalid: expected a batch of inputs (lsuv is data-dependent:"
            " apply(model, 'lsuv', data=x))"
        )
    _lsuv(
        model,
        selected,
        data,
        generator=generator,
        gain=gain,
        bias=bias,
        activation=activation,
        tol=tol,
        max_iter=max_iter,
        pre_init=pre_init,
    )


def lsuv(
    model: nn.Module,
    data: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    layers: LayerSelector = (nn.Linear,),
    bias: float | str = 0.0,
    tol: float = 0.1,
    max_iter: int = 10,
    pre_init: str = "orthogonal",
) -> dict[str, float]:
    r"""Layer-sequential unit-variance (LSUV) initialization; returns each layer's output variance.

    $$
    W_L \leftarrow \frac{W_L}{\sqrt{\operatorname{Var}(B_L)}} \quad \text{until} \quad
    \left\lvert \operatorname{Var}(B_L) - 1 \right\rvert < \epsilon_{\text{tol}} \ \text{(at
    most } T_{\max} \text{ times)}, \qquad L = 1, 2, \dots \text{ in forward order}
    $$

    with $W_L$ the weight of layer $L$ (after the orthonormal pre-initialization),
    $\operatorname{Var}(B_L)$ the variance over all examples and units of its pre-activation
    output on the batch ``data``, $\epsilon_{\text{tol}}$ = ``tol`` and $T_{\max}$ =
    ``max_iter``.

    Mishkin & Matas, "All you need is a good init", ICLR 2016, Algorithm 1:

    1. pre-initialize every layer's weight with an orthonormal matrix (``pre_init``, Saxe et al.
       2014; any registered tensor rule may be given instead);
    2. for each layer L in forward order, repeat at most ``max_iter`` times: run the batch
       ``data`` forward, ``v = Var(B_L)`` over all examples and units of the layer's output
       (its pre-activation), stop if ``|v - 1| < tol``, else ``W_L <- W_L / sqrt(v)``.

    The paper's Tol_var = 0.1 and T_max = 10 are the defaults. Biases are set by ``bias`` before
    step 2 (zero by default; with zero bias one rescaling already gives v = 1 exactly).

    ``B_L`` is the layer's pre-activation. For an ``nn.Linear`` that is its output. A layer
    whose output is already past its activation and random (a DropConnect layer,
    :class:`smithing.nn.dropconnect.DropConnectLinear`, returns ``a(u)`` for sampled masks)
    says so by defining ``preactivation(x)``, its deterministic pre-activation (DropConnect:
    ``(1 - p)(W x + b)``, the masks off and the mean weights), and ``deterministic()``, a
    context in which its forward is deterministic (DropConnect: ``a((1 - p)(W x + b))``);
    ``B_L = preactivation(x)`` is then normalized, and every forward pass of the algorithm runs
    inside every such layer's ``deterministic()`` context, so no mask or sample is drawn.

    Implementation: forward hooks capture each layer's pre-activation (its first call, if a
    module is called several times) and stop the forward pass there; the model runs in eval
    mode (no dropout) under ``torch.no_grad`` and its train/eval flags are restored afterwards.

    Args:
        model: the network.
        data: a batch of at least 2 inputs.
        generator: randomness of ``pre_init``.
        layers: the layers to initialize (module types or a predicate, as :func:`apply`).
        bias: the bias policy (as :func:`apply`), applied before the rescaling.
        tol: the tolerance on ``|Var(B_L) - 1|`` (the paper's Tol_var).
        max_iter: the most rescalings per layer (the paper's T_max).
        pre_init: the tensor rule applied first (orthogonal, gain 1).

    Returns:
        ``{layer name: Var(B_L)}`` after the last rescaling, in forward order.

    References:
        Mishkin & Matas, "All you need is a good init", ICLR 2016, Algorithm 1.
    """
    _check_bias(bias)
    return _lsuv(
        model,
        select_layers(model, layers),
        data,
        generator=generator,
        gain=None,
        bias=bias,
        activation=None,
        tol=tol,
        max_iter=max_iter,
        pre_init=pre_init,
    )


def _lsuv(
    model: nn.Module,
    selected: list[tuple[str, nn.Module]],
    data: torch.Tensor,
    *,
    generator: torch.Generator | None,
    gain: float | str | None,
    bias: float | str,
    activation: str | None,
    tol: float,
    max_iter: int,
    pre_init: str,
) -> dict[str, float]:
    check(
        isinstance(data, torch.Tensor) and data.shape[0] >= 2,
        "data",
        type(data).__name__,
        "a tensor batch of at least 2 examples",
    )
    check(tol > 0, "tol", tol, "a positive tolerance")
    check(isinstance(max_iter, int) and max_iter >= 1, "max_iter", max_iter, "a positive int")
    for _, module in selected:
        weight = cast(torch.Tensor, module.weight)  # select_layers keeps tensor weights only
        initialize(weight, pre_init, generator=generator, gain=gain, activation=activation)
        _set_bias(module, bias)
    flags = {m: m.training for m in model.modules()}
    model.eval()
    state: dict[str, Any] = {"target": None, "out": None, "order": []}

    def make_hook(layer_name):
        def hook(module, inputs, output):
            if layer_name not in state["order"]:
                state["order"].append(layer_name)
            if state["target"] == layer_name:
                pre = getattr(module, "preactivation", None)  # output past its activation
                state["out"] = output if pre is None else pre(inputs[0])  # B_L
                raise _StopForward

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in selected]
    modules = dict(selected)
    variances: dict[str, float] = {}
    try:
        with torch.no_grad(), _deterministic(model):
            model(data)  # records the forward order of the selected layers
            missing = [n for n, _ in selected if n not in state["order"]]
            if missing:
                raise ValueError(
                    f"layers={missing!r} are never called by the forward pass; "
                    "lsuv needs every selected layer to run on data"
                )

            def output_variance(layer_name):
                state["target"] = layer_name
                with contextlib.suppress(_StopForward):
                    model(data)
                return float(state["out"].float().var())  # Var(B_L) over batch and units

            for layer_name in state["order"]:
                w = cast(torch.Tensor, modules[layer_name].weight)  # as above
                v = output_variance(layer_name)
                for _ in range(max_iter):
                    if not math.isfinite(v) or v == 0.0:
                        raise ValueError(
                            f"lsuv: layer {layer_name!r} has output variance {v} on "
                            "data; it cannot be rescaled to 1"
                        )
                    if abs(v - 1.0) < tol:
                        break
                    w.div_(math.sqrt(v))  # W_L <- W_L / sqrt(Var(B_L))
                    v = output_variance(layer_name)
                variances[layer_name] = v
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags.items():
            m.training = flag
    return variances
