"""From names to weights: torch / Keras aliases, gain resolution, :func:`initialize` (one tensor),
:func:`select_layers` and :func:`apply` (a whole model)."""

from __future__ import annotations

import inspect
import math
from typing import cast

import torch
from torch import nn

from smithing._registry import check
from smithing.init.registry import (
    INITIALIZERS,
    Initializer,
    LayerSelector,
)
from smithing.nn import activations as _activations

__all__ = [
    "ALIASES",
    "apply",
    "initialize",
    "select_layers",
]

# ----------------------------------------------------------------------------- aliases

#: Other libraries' names for our rules, accepted wherever a rule is named (``initialize``,
#: ``apply``, ``--init``): torch.nn.init's functions, with or without their trailing ``_``, and
#: keras.initializers' string names. An alias means our rule with our defaults (e.g. ``normal``'s
#: sigma 0.01, not torch's 1 or Keras' 0.05). Keras' ``glorot_uniform``, ``he_normal``,
#: ``lecun_uniform``, ``orthogonal``, ``identity``, ``zeros``, ``ones``, ``constant`` are our
#: names already (Keras' ``*_normal`` rules are truncated normals; ours are not). torch's
#: ``sparse_`` is not an alias: it zeroes a fraction of each column, ours keeps k weights a row.
ALIASES: dict[str, str] = {
    **{
        spelling: rule
        for torch_name, rule in (
            ("xavier_uniform", "glorot_uniform"),
            ("xavier_normal", "glorot_normal"),
            ("kaiming_uniform", "he_uniform"),
            ("kaiming_normal", "he_normal"),
            ("orthogonal", "orthogonal"),
            ("eye", "identity"),
            ("uniform", "uniform"),
            ("normal", "normal"),
            ("zeros", "zeros"),
            ("ones", "ones"),
            ("constant", "constant"),
        )
        for spelling in (torch_name, torch_name + "_")
        if spelling != rule
    },
    "random_uniform": "uniform",  # Keras (half-width 0.05, as ours)
    "random_normal": "normal",  # Keras
}
for _alias, _rule in ALIASES.items():
    INITIALIZERS.alias(_alias, _rule)


# ----------------------------------------------------------------------------- resolution

_GAINS = "None or 'paper' (the paper's rule), 'auto' (the activation's gain) or a positive number"


def _resolve_gain(spec: Initializer, gain, activation: str | None) -> float:
    """The number ``gain`` stands for (see the module docstring)."""
    if not spec.uses_gain:
        check(gain is None, "gain", gain, f"None: {spec.name!r} does not use a gain")
        return 1.0
    if gain is None or gain == "paper":
        return spec.paper_gain  # the name means its paper's rule, whatever the activation
    if gain == "auto":
        if activation is None:
            raise ValueError(
                f"gain={gain!r} is invalid: expected an activation to take the gain from: pass "
                "activation= (or a model with an 'activation' attribute, such as an MLP)"
            )
        return _activations.gain(activation)  # torch.nn.init.calculate_gain's convention
    if gain == "theano":
        raise ValueError(
            f"gain='theano' is invalid: expected {_GAINS}; the Theano tutorial's rule is "
            "gain=4 for sigmoid layers (1 otherwise)"
        )
    check(
        isinstance(gain, (int, float))
        and not isinstance(gain, bool)
        and math.isfinite(gain)
        and gain > 0,
        "gain",
        gain,
        _GAINS,
    )
    return float(gain)


def _check_params(spec: Initializer, params: dict) -> None:
    sig = inspect.signature(spec.fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return  # the rule forwards extra parameters (pretrained sources)
    allowed = [
        n
        for n, p in sig.parameters.items()
        if p.kind is p.KEYWORD_ONLY and n not in ("generator", "gain", "bias", "activation")
    ]
    for key in params:
        check(
            key in allowed,
            key,
            params[key],
            f"a parameter of {spec.name!r} (its parameters: {', '.join(allowed) or 'none'})",
        )


def initialize(
    weight: torch.Tensor,
    name: str,
    *,
    generator: torch.Generator | None = None,
    gain: float | str | None = None,
    activation: str | None = None,
    stacked: bool = False,
    **params,
) -> torch.Tensor:
    """Fill ``weight`` in place with the rule ``name`` and return it.

    Args:
        weight: the tensor to fill, ``(out, in, *kernel)`` (``(members, out, in, ...)`` with
            ``stacked=True``).
        name: a registered rule (``smithing list``) or one of its torch / Keras aliases.
        generator: source of randomness (same state, same weights).
        gain: ``None``/``"paper"`` (the paper's rule, default), ``"auto"`` (the gain of
            ``activation``) or a positive number (see the module docstring).
        activation: the activation whose gain ``gain="auto"`` uses; ignored otherwise.
        stacked: the leading axis of ``weight`` is an ensemble's members axis; each member is
            initialized on its own, one after the other from ``generator``.
        params: the rule's own (``a`` for uniform, ``sigma`` for normal and sparse, ``k`` for
            sparse, ``mode`` for he/lecun, ``scale`` and ``noise`` for identity).

    Returns:
        ``weight``.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> w = initialize(torch.empty(256, 512), "he_normal", generator=g)  # Var = 2 / 512
        >>> round(float(w.var() * 512), 1)
        2.0
        >>> initialize(torch.empty(2, 3), "identity")
        tensor([[1., 0., 0.],
                [0., 1., 0.]])
    """
    spec = INITIALIZERS.get(name)
    if spec.model_level:
        raise ValueError(
            f"initializer {name!r} needs a model: use smithing.init.apply(model, {name!r}, ...)"
        )
    _check_params(spec, params)
    if activation is not None:
        _activations.get(activation)  # validates the name
    g = _resolve_gain(spec, gain, activation)
    with torch.no_grad():
        if stacked:
            check(
                weight.dim() >= 3,
                "weight",
                tuple(weight.shape),
                "a (members, out, in, ...) tensor when stacked=True",
            )
            for member in weight:  # member: (out, in, ...) view
                spec.fn(member, generator=generator, gain=g, **params)
        else:
            spec.fn(weight, generator=generator, gain=g, **params)
    return weight


def select_layers(
    model: nn.Module, layers: LayerSelector = (nn.Linear,)
) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` pairs of ``model`` matched by ``layers`` that have a ``weight``.

    ``layers`` is a tuple of module types or a predicate ``(name, module) -> bool``.
    """
    if isinstance(layers, type):
        layers = (layers,)
    if isinstance(layers, tuple):
        types = layers
        check(
            all(isinstance(t, type) for t in types),
            "layers",
            layers,
            "a tuple of module types or a predicate (name, module) -> bool",
        )

        def match(_n, m):
            return isinstance(m, types)
    else:
        check(
            callable(layers),
            "layers",
            layers,
            "a tuple of module types or a predicate (name, module) -> bool",
        )
        match = layers
    out = [
        (n, m)
        for n, m in model.named_modules()
        if match(n, m) and isinstance(getattr(m, "weight", None), torch.Tensor)
    ]
    if not out:
        raise ValueError(
            f"layers={layers!r} is invalid: it matches no module with a weight in "
            f"{type(model).__name__}"
        )
    return out


def _set_bias(module: nn.Module, bias) -> None:
    b = getattr(module, "bias", None)
    if b is None or bias == "keep":
        return
    with torch.no_grad():
        b.fill_(0.0 if bias == "zero" else float(bias))


def _check_bias(bias) -> None:
    ok = bias in ("zero", "keep") or (
        isinstance(bias, (int, float)) and not isinstance(bias, bool) and math.isfinite(bias)
    )
    check(ok, "bias", bias, "a number, 'zero' or 'keep'")


def _model_activation(model: nn.Module, activation: str | None) -> str | None:
    if activation is not None:
        _activations.get(activation)
        return activation
    act = getattr(model, "activation", None)
    return act if isinstance(act, str) and act in _activations.ACTIVATIONS else None


def apply(
    model: nn.Module,
    name: str,
    *,
    generator: torch.Generator | None = None,
    bias: float | str = 0.0,
    layers: LayerSelector = (nn.Linear,),
    activation: str | None = None,
    gain: float | str | None = None,
    **params,
) -> nn.Module:
    """Initialize the selected layers of ``model`` with the rule ``name``; returns ``model``.

    Args:
        generator: source of randomness (same state, same weights).
        bias: value the selected layers' biases are set to (``0.0``/``"zero"`` by default, as
            every paper above does), or ``"keep"`` to leave them.
        layers: module types (default ``(nn.Linear,)``) or a predicate ``(name, module) ->
            bool`` choosing which modules' ``weight`` is initialized.
        activation: activation name whose gain ``gain="auto"`` uses; default
            ``model.activation`` when the model has one (an ``MLP``). It does not change the
            rule otherwise: ``apply(tanh_mlp, "lecun_normal")`` is LeCun's rule.
        gain: ``None``/``"paper"`` (the paper's rule, default), ``"auto"`` or a positive
            number (see the module docstring).
        params: the rule's parameters (``data=``, ``tol=``, ... for ``lsuv``; ``source=`` for
            ``pretrained``).
    """
    spec = INITIALIZERS.get(name)
    _check_bias(bias)
    act = _model_activation(model, activation)
    selected = select_layers(model, layers)
    if spec.model_level:
        _check_params(spec, params)
        spec.fn(
            model, selected, generator=generator, gain=gain, bias=bias, activation=act, **params
        )
        return model
    for _, module in selected:
        weight = cast(torch.Tensor, module.weight)  # select_layers keeps tensor weights only
        initialize(weight, name, generator=generator, gain=gain, activation=act, **params)
        _set_bias(module, bias)
    return model
