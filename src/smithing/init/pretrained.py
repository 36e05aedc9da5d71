"""Initialization by unsupervised pretraining: the model-level rule ``"pretrained"`` and the
registry of its sources (:func:`register_pretrained`; ``dbn`` / ``sda`` are registered by
:mod:`smithing.experiment.pretrained`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from smithing._registry import check, unknown_name_message
from smithing.init.registry import (
    PRETRAINED,
    _register,
)
from smithing.init.resolve import (
    _set_bias,
    initialize,
)

__all__ = [
    "register_pretrained",
]

# ----------------------------------------------------------------------------- pretrained

Pairs = Sequence[tuple[torch.Tensor, torch.Tensor | None]]
_NO_SOURCES = "none registered yet: `import smithing.experiment` registers 'dbn' and 'sda'"


def register_pretrained(name: str, fn: Callable[..., object], *, description: str = "") -> None:
    """Register a pretraining source for ``apply(model, "pretrained", source=name, **params)``.

    ``fn(model, layers, *, generator, **params)`` returns the ``(W, b)`` pairs for the selected
    layers in forward order (``W`` shaped ``(out_features, in_features)`` like ``nn.Linear``,
    ``b`` a vector or None), or ``None`` after writing the weights itself. Sources are
    registered from above: the ``"dbn"`` and ``"sda"`` stack sources (greedy pretraining on a
    dataset by name or a tensor) by :mod:`smithing.experiment.pretrained`, on
    ``import smithing.experiment``. This module never imports the pretraining code.
    """
    PRETRAINED.register(name, fn, description=description)


@_register(
    "pretrained",
    model_level=True,
    description="weights from a pretraining source (RBM/DBN/DAE stack) or (W, b) pairs",
)
def _pretrained(
    model,
    selected,
    *,
    generator,
    gain,
    bias,
    activation,
    source=None,
    rest: str | None = None,
    **params,
) -> None:
    r"""Copy pretrained ``(W, b)`` pairs into the selected layers, in order.

    $$
    W_l \leftarrow W_l^{\text{pre}}, \quad b_l \leftarrow b_l^{\text{pre}}, \qquad l = 1,
    \dots, K
    $$

    with $(W_l^{\text{pre}}, b_l^{\text{pre}})$ the $K$ pairs of ``source`` (the encoders of a
    greedily pretrained stack: RBM $p(h = 1 \mid v) = \sigma(W^\top v + c)$ or DAE
    $h = s(W x + b)$ layers) and $l$ the selected layers in forward order; layers past $K$ get
    ``rest``.

    ``source`` is a registered name (:func:`register_pretrained`; ``"dbn"`` and ``"sda"`` once
    :mod:`smithing.experiment` is imported), a callable with that signature, or a sequence of
    ``(W, b)`` pairs (e.g. ``smithing.pretrain.stack.Stack.encoders()``). Fewer pairs than
    layers is allowed (a pretrained stack covers the hidden layers; the output layer is new):
    the remaining layers are initialized with the rule ``rest`` (e.g. ``"glorot_uniform"``)
    or, with ``rest=None``, left as they are. A pair whose ``b`` is None gets the ``bias`` policy.

    Args:
        model: the model.
        selected: its selected ``(name, module)`` layers.
        generator: passed to a callable or registered source, and to ``rest``.
        gain: the gain of ``rest`` (default its paper's rule).
        activation: the activation ``gain="auto"`` reads for ``rest``.
        bias: the bias policy for pairs without ``b`` and for the ``rest`` layers.
        source: a registered source name, a callable or ``(W, b)`` pairs.
        rest: the tensor rule for layers the source does not cover, or None.
        params: passed to a callable or registered source.

    Returns:
        None (the layers are set in place).

    References:
        Hinton, Osindero & Teh, "A fast learning algorithm for deep belief nets", Neural
        Computation 2006; Vincent, Larochelle, Lajoie, Bengio & Manzagol, "Stacked denoising
        autoencoders", JMLR 2010 (greedy pretraining, then supervised fine-tuning).
    """
    if source is None:
        raise ValueError(
            "source=None is invalid: expected a registered pretraining source "
            f"({', '.join(PRETRAINED.names()) or _NO_SOURCES}), a callable "
            "or a list of (W, b) pairs"
        )
    if isinstance(source, str):
        if source not in PRETRAINED:
            raise ValueError(
                unknown_name_message("pretrained source", source, PRETRAINED.names())
                + ". The stack sources 'dbn' and 'sda' are registered by the experiment layer: "
                "`import smithing.experiment` first (smithing.experiment.pretrained), or pass "
                "source=stack.encoders() of a smithing.pretrain.stack.pretrain_stack(...)"
            )
        source = PRETRAINED.get(source)
    if callable(source):
        pairs = source(model, selected, generator=generator, **params)
        if pairs is None:
            return
    else:
        if params:
            raise ValueError(
                f"{sorted(params)!r} are invalid: parameters are only passed to a "
                "callable or registered source"
            )
        pairs = source
    pairs = list(pairs)
    if len(pairs) > len(selected):
        raise ValueError(
            f"source has {len(pairs)} (W, b) pairs but the model has only "
            f"{len(selected)} selected layers ({', '.join(n for n, _ in selected)})"
        )
    with torch.no_grad():
        covered = selected[: len(pairs)]
        for i, (pair, (layer_name, module)) in enumerate(zip(pairs, covered, strict=True)):
            check(
                isinstance(pair, (tuple, list)) and len(pair) == 2,
                f"source[{i}]",
                type(pair).__name__,
                "a (W, b) pair",
            )
            W, b = pair
            if tuple(W.shape) != tuple(module.weight.shape):
                hint = (
                    " (pass W.T: W must be (out_features, in_features))"
                    if tuple(W.shape[::-1]) == tuple(module.weight.shape)
                    else ""
                )
                raise ValueError(
                    f"pretrained W {i} has shape {tuple(W.shape)} but layer "
                    f"{layer_name!r} has weight shape {tuple(module.weight.shape)}"
                    f"{hint}"
                )
            module.weight.copy_(W)
            if b is None:
                _set_bias(module, bias)
            elif getattr(module, "bias", None) is None:
                raise ValueError(f"pretrained b {i} given but layer {layer_name!r} has no bias")
            else:
                if tuple(b.shape) != tuple(module.bias.shape):
                    raise ValueError(
                        f"pretrained b {i} has shape {tuple(b.shape)} but layer "
                        f"{layer_name!r} has bias shape {tuple(module.bias.shape)}"
                    )
                module.bias.copy_(b)
    if rest is not None:
        for _, module in selected[len(pairs) :]:
            initialize(module.weight, rest, generator=generator, gain=gain, activation=activation)
            _set_bias(module, bias)
