"""The functional core of greedy stacks: the layer-wise loop, unrolling into an MLP.

The one pretraining API (:class:`~smithing.pretrain.stack.StackSpec`,
:func:`~smithing.pretrain.stack.pretrain_stack`, :class:`~smithing.pretrain.stack.Stack`) lives
in :mod:`smithing.pretrain.stack`; this module holds what the layer kinds
(:mod:`~smithing.pretrain.dbn`, :mod:`~smithing.pretrain.autoencoder`) and that API share, so
that neither has to import the other.

Greedy layer-wise training (Hinton, Osindero & Teh, "A fast learning algorithm for deep belief
nets", Neural Computation 2006; Bengio, Lamblin, Popovici & Larochelle, "Greedy layer-wise
training of deep networks", NIPS 2007): layer ``l`` is trained, unsupervised, on the codes of
layer ``l - 1`` for the training data, ``x_l = transform_{l-1}(x_{l-1})`` (hidden
probabilities, or samples of them). Each layer is a :class:`LayerPretrainer` (an RBM,
:class:`smithing.pretrain.dbn.RBMPretrainer`, or a denoising autoencoder,
:class:`smithing.pretrain.autoencoder.DAEPretrainer`); its encoder
``h = sigmoid(x @ weight.T + bias)`` is an ``nn.Linear`` plus activation, so the stack unrolls
into a :class:`smithing.nn.MLP` whose hidden layers compute exactly the stack's upward pass of
probabilities, topped by a fresh softmax (logit) layer for supervised fine-tuning (Hinton &
Salakhutdinov, "Reducing the dimensionality of data with neural networks", Science 2006).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from smithing._registry import Registry, check
from smithing.history import History
from smithing.nn import MLP

__all__ = [
    "OUTPUT_INITS",
    "GreedyResult",
    "LayerPretrainer",
    "chain_progress",
    "greedy_stack",
    "phase_progress",
    "per_layer",
    "shared_settings",
    "pretrained_weights",
    "to_mlp",
    "train_greedy",
]


@runtime_checkable
class LayerPretrainer(Protocol):
    """One layer of a greedy stack.

    ``fit`` trains the layer on inputs ``x (*M, n, n_in)`` and returns its
    :class:`~smithing.history.History` (given ``checkpoint=``, a
    :class:`smithing.checkpoint.Checkpointer`, it resumes from it and saves there:
    :func:`greedy_stack` passes one only when it has one itself, so
    a pretrainer without the argument still works unchecked);
    ``encoder()`` returns ``(weight (*M, n_out, n_in), bias (*M, n_out))`` in ``nn.Linear``
    layout with ``codes = activation(x @ weight.T + bias)``; ``transform`` returns those codes
    (``sample=False``) or binary samples of them (``sample=True``), the next layer's inputs.
    """

    @property
    def n_in(self) -> int: ...

    @property
    def n_out(self) -> int: ...

    @property
    def activation(self) -> str: ...

    def fit(
        self,
        x: Tensor,
        *,
        valid: Tensor | None = None,
        generator: torch.Generator | None = None,
        checkpoint: Any = None,
    ) -> History: ...

    def encoder(self) -> tuple[Tensor, Tensor]: ...

    def transform(
        self, x: Tensor, *, sample: bool = False, generator: torch.Generator | None = None
    ) -> Tensor: ...


@dataclass
class GreedyResult:
    """What :func:`greedy_stack` returns: the trained layers, their histories and how codes
    were propagated (see :class:`smithing.pretrain.stack.Stack` for the API's stack)."""

    layers: list[LayerPretrainer]
    histories: list[History] = field(default_factory=list)
    propagate: str = "probs"

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.layers[0].n_in, *(layer.n_out for layer in self.layers))

    def encoders(self) -> list[tuple[Tensor, Tensor]]:
        return [layer.encoder() for layer in self.layers]

    @torch.no_grad()
    def upward(self, x: Tensor) -> list[Tensor]:
        """The codes (probabilities) of every layer for inputs ``x``, bottom to top."""
        out = []
        for layer in self.layers:
            x = layer.transform(x)
            out.append(x)
        return out

    def transform(self, x: Tensor) -> Tensor:
        """The top layer's codes (probabilities) for inputs ``x``."""
        return self.upward(x)[-1]


def greedy_stack(
    pretrainers: Sequence[LayerPretrainer],
    data: Tensor,
    *,
    propagate: str = "probs",
    valid_data: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, LayerPretrainer, History], None] | None = None,
    checkpoint: Any = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> GreedyResult:
    """Train ``pretrainers`` bottom-up, each on the previous layer's codes of ``data``.

    ``propagate="probs"`` feeds the next layer the hidden probabilities (mean-field codes, as in
    Hinton & Salakhutdinov's code), ``"samples"`` binary samples of them (the DBN's generative
    derivation, Hinton et al. 2006); they are computed once per layer, before training the
    next. ``valid_data`` is propagated with probabilities and handed to each ``fit`` for
    monitoring. ``callback(layer_index, layer, history)`` runs after each layer.

    ``checkpoint`` (a :class:`~smithing.checkpoint.Checkpointer`) makes the stack
    resumable: layer ``l`` trains with its own child, ``checkpoint.sub(f"layer{l}")``, so a
    rerun restores the finished layers (their trainers skip training and restore their final
    state, the generators' included) and continues the interrupted one; bitwise on CPU.

    ``progress(epoch, epochs, phase)`` is called after every epoch of every layer, with
    ``phase = f"layer{l}"`` and ``epochs`` that layer's epoch count (the runner shows it in
    ``smithing status``); a pretrainer whose ``fit`` takes no ``progress`` is not reported.
    """
    check(propagate in ("probs", "samples"), "propagate", propagate, "'probs' or 'samples'")
    check(len(pretrainers) > 0, "pretrainers", pretrainers, "at least one layer")
    x, valid = data, valid_data
    histories = []
    for i, layer in enumerate(pretrainers):
        check(
            x.shape[-1] == layer.n_in,
            f"pretrainers[{i}].n_in",
            layer.n_in,
            f"the size of its inputs, {x.shape[-1]}",
        )
        kw: dict[str, Any] = {}
        if checkpoint is not None:
            kw["checkpoint"] = checkpoint.sub(f"layer{i}")
        if progress is not None and "progress" in inspect.signature(layer.fit).parameters:
            epochs = int(getattr(layer, "train_kwargs", {}).get("epochs", 0))
            kw["progress"] = phase_progress(progress, epochs, f"layer{i}")
        hist = layer.fit(x, valid=valid, generator=generator, **kw)
        histories.append(hist)
        if callback is not None:
            callback(i, layer, hist)
        if i < len(pretrainers) - 1:
            with torch.no_grad():
                x = layer.transform(x, sample=propagate == "samples", generator=generator)
                valid = None if valid is None else layer.transform(valid)
    return GreedyResult(list(pretrainers), histories, propagate)


def train_greedy(
    trainer: str,
    stack: Any,
    data: Tensor,
    make: Callable[[Any, dict], LayerPretrainer],
    *,
    layers: Mapping | Sequence[Mapping] | None,
    what: str,
    propagate: str = "probs",
    valid_data: Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    checkpoint: Any = None,
    layer_callback: Callable[[int, LayerPretrainer, History], None] | None = None,
    callback: Callable[[int, LayerPretrainer, History], None] | None = None,
    **shared: Any,
) -> list[History]:
    """The body of the stack trainers (:func:`~smithing.pretrain.dbn.train_dbn`,
    :func:`~smithing.pretrain.autoencoder.train_sda`): the trainer-level settings (``shared``:
    epochs, lr, batch_size, optimizer, ..., every layer's defaults) merged under each layer's
    own (``layers``), one pretrainer per layer of ``stack.stack`` from ``make(layer,
    settings)``, the stack, ``data`` and ``valid_data`` moved to ``device``, then
    :func:`greedy_stack`. ``trainer`` names the caller in the deprecation warning of
    ``callback`` (the old name of ``layer_callback``); ``what`` names a layer in messages."""
    from smithing.checkpoint import as_checkpointer
    from smithing.history import renamed

    layer_callback = renamed(trainer, "callback", callback, "layer_callback", layer_callback)
    defaults = shared_settings(**shared)
    ckpt = as_checkpointer(checkpoint)
    if device is not None:
        stack.to(device)
        data = data.to(device)
        valid_data = None if valid_data is None else valid_data.to(device)
    settings = per_layer(layers, len(stack.stack), defaults, what=what)
    pretrainers = [make(layer, s) for layer, s in zip(stack.stack, settings)]
    result = greedy_stack(
        pretrainers,
        data,
        propagate=propagate,
        valid_data=valid_data,
        generator=generator,
        callback=layer_callback,
        checkpoint=ckpt,
    )
    return result.histories


def phase_progress(
    progress: Callable[[int, int, str], None], epochs: int, phase: str
) -> Callable[[int, dict], None]:
    """A trainer's ``progress(epoch, record)`` that reports ``progress(epoch, epochs, phase)``."""
    return lambda epoch, record: progress(epoch, epochs, phase)


def chain_progress(
    first: Callable[[int, dict], None] | None, second: Callable[[int, dict], None]
) -> Callable[[int, dict], None]:
    """``progress(epoch, record)`` calling ``first`` (when given) then ``second``."""
    if first is None:
        return second

    def both(epoch: int, record: dict) -> None:
        first(epoch, record)
        second(epoch, record)

    return both


def shared_settings(**given) -> dict:
    """The trainer-level settings of a stack trainer (``train_dbn(epochs=..., lr=...)``) that
    were given (not None, not empty): every layer's defaults for :func:`per_layer`."""
    check(
        not isinstance(given.get("optimizer"), torch.optim.Optimizer),
        "optimizer",
        type(given.get("optimizer")).__name__,
        "a name (a ready optimizer belongs to one layer: give it in layers=)",
    )
    return {k: v for k, v in given.items() if v is not None and not (k == "callbacks" and not v)}


def per_layer(
    layers: Mapping | Sequence[Mapping] | None,
    n: int,
    shared: Mapping | None = None,
    *,
    what: str = "layer",
) -> list[dict]:
    """The training settings of each of ``n`` layers: ``layers`` is None, one mapping for
    every layer, or a sequence of one mapping per layer; ``shared`` (the trainer-level
    ``epochs=``, ``lr=``, ...) is every layer's default, which a layer's own mapping overrides.
    """
    settings: list[dict]
    if layers is None:
        settings = [{} for _ in range(n)]
    elif isinstance(layers, Mapping):
        settings = [dict(layers) for _ in range(n)]
    else:
        check(
            isinstance(layers, Sequence) and all(isinstance(s, Mapping) for s in layers),
            "layers",
            layers,
            "None, one mapping of training settings, or one mapping per layer",
        )
        settings = [dict(s) for s in layers]
        check(len(settings) == n, "layers", f"{len(settings)} settings", f"one per {what} ({n})")
    return [{**(shared or {}), **s} for s in settings]


def _encoders(stack) -> list[tuple[Tensor, Tensor]]:
    if hasattr(stack, "encoders"):
        return list(stack.encoders())
    return [(W, b) for W, b in stack]


def pretrained_weights(stack, *, member: int | None = None) -> list[tuple[Tensor, Tensor]]:
    """The stack's encoders as ``[(weight (out, in), bias (out,)), ...]`` in ``nn.Linear``
    layout, bottom to top (detached copies), ready to be copied into ``MLP.linears``.

    ``stack`` is a :class:`smithing.pretrain.stack.Stack`, a :class:`GreedyResult`, a
    :class:`smithing.pretrain.dbn.DBN` or :class:`~smithing.pretrain.autoencoder.StackedDAE`,
    anything with
    ``encoders()``, or a list of ``(weight, bias)``. For an ensemble stack the weights carry a
    leading members axis ``(M, out, in)`` unless ``member`` picks one.
    """
    out = []
    for W, b in _encoders(stack):
        if member is not None:
            check(
                W.dim() == 3 and 0 <= member < W.shape[0],
                "member",
                member,
                "None for a single stack, or a member index of an ensemble stack",
            )
            W, b = W[member], b[member]
        out.append((W.detach().clone(), b.detach().clone()))
    return out


def _init_default(linear: nn.Linear, generator: torch.Generator | None) -> None:
    # nn.Linear.reset_parameters, with an explicit generator
    nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=generator)
    bound = 1.0 / math.sqrt(linear.in_features)
    nn.init.uniform_(linear.bias, -bound, bound, generator=generator)


def _init_zeros(linear: nn.Linear, generator: torch.Generator | None) -> None:
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)


def _init_normal(linear: nn.Linear, generator: torch.Generator | None) -> None:
    nn.init.normal_(linear.weight, 0.0, 0.01, generator=generator)
    nn.init.zeros_(linear.bias)


OUTPUT_INITS: Registry[Callable[[nn.Linear, torch.Generator | None], None]] = Registry(
    "output init"
)
OUTPUT_INITS.register(
    "default",
    _init_default,
    description="PyTorch's nn.Linear rule: U(+-1/sqrt(fan_in)) weights and bias",
)
OUTPUT_INITS.register(
    "zeros", _init_zeros, description="zero weights and bias (Theano DBN tutorial's logistic layer)"
)
OUTPUT_INITS.register("normal", _init_normal, description="N(0, 0.01^2) weights, zero bias")


def to_mlp(
    stack,
    n_classes: int,
    activation: str = "sigmoid",
    *,
    output_init: str | Callable[[nn.Linear, torch.Generator | None], None] = "default",
    member: int | None = None,
    generator: torch.Generator | None = None,
    **mlp_kwargs,
) -> MLP:
    """Unroll the stack's encoders into an ``MLP(sizes[0], sizes[1:], n_classes, activation)``.

    Hidden layer ``l`` gets ``weight = encoder_l.weight`` (already ``(out, in)``: for an RBM
    this is ``W.T``) and ``bias = encoder_l.bias``; with ``activation="sigmoid"`` the MLP's hidden
    activations equal the stack's upward pass of probabilities exactly. The output layer is
    fresh, initialized by ``output_init`` (a name in :data:`OUTPUT_INITS` or a callable
    ``(linear, generator) -> None``); the MLP returns logits (softmax in the loss). The model is
    put on the weights' device and dtype. ``mlp_kwargs`` go to :class:`MLP` (e.g. dropout).
    """
    check(isinstance(n_classes, int) and n_classes > 0, "n_classes", n_classes, "a positive int")
    encs = pretrained_weights(stack, member=member)
    check(len(encs) > 0, "stack", stack, "at least one layer")
    for W, _ in encs:
        check(
            W.dim() == 2,
            "member",
            member,
            "a member index for an ensemble stack (weights have a members axis)",
        )
    init = OUTPUT_INITS.get(output_init) if isinstance(output_init, str) else output_init
    sizes = [encs[0][0].shape[1]] + [W.shape[0] for W, _ in encs]
    W0 = encs[0][0]
    model = MLP(sizes[0], sizes[1:], n_classes, activation, **mlp_kwargs).to(
        device=W0.device, dtype=W0.dtype
    )
    linears = model.linears
    with torch.no_grad():
        for linear, (W, b) in zip(linears[:-1], encs):
            linear.weight.copy_(W)  # (out, in): nn.Linear layout already
            linear.bias.copy_(b)
        init(linears[-1], generator)
    return model
