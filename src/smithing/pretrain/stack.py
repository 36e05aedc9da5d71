"""The one pretraining API: greedy layer-wise pretraining, unrolling into an MLP, fine-tuning.

Greedy layer-wise training (Hinton, Osindero & Teh, "A fast learning algorithm for deep belief
nets", Neural Computation 2006; Bengio, Lamblin, Popovici & Larochelle, "Greedy layer-wise
training of deep networks", NIPS 2007; Vincent, Larochelle, Lajoie, Bengio & Manzagol, "Stacked
denoising autoencoders", JMLR 11, 2010): layer ``l`` is trained, unsupervised, on the codes of
layer ``l - 1`` for the training data, ``x_l = s(x_{l-1} W_{l-1}^T + b_{l-1})`` (or binary
samples of them); the stack is unrolled into a :class:`smithing.nn.MLP` whose hidden layers are
the encoders, topped by a fresh output layer, and fine-tuned by backprop (Hinton &
Salakhutdinov, "Reducing the dimensionality of data with neural networks", Science 2006).

Three steps, one path (every study that pretrains and the ``pretrained`` initializer use it)::

    spec = StackSpec("dbn", [784, 500, 500], layers={"epochs": 10, "lr": 0.05})
    stack = pretrain_stack(spec, x_train, generator=g)      # 1. greedy pretraining
    model = stack.to_mlp(10, generator=g)                    # 2. unrolling
    history = finetune(model, data, fit=smithing.train.fit, epochs=20, lr=0.1)  # 3.

* :class:`StackSpec`: what to pretrain, JSON-able: the layer ``kind`` (:data:`STACK_KINDS`:
  ``"dbn"``, RBMs trained by CD-k / PCD with :func:`~smithing.pretrain.rbm.train_rbm`;
  ``"sda"``, denoising autoencoders trained with
  :func:`~smithing.pretrain.autoencoder.train_autoencoder`), ``sizes``, per-layer training
  settings, code ``activation``, ``propagate`` (probabilities or samples), ``members`` (an
  ensemble of independent stacks trained as batched matmuls) and constructor ``options``.
* :func:`pretrain_stack`: trains a spec on a data tensor, in one of two randomness modes:

  - ``generator=g`` (*shared*): every layer is built from ``g`` first (bottom to top), then
    trained with ``g``, one after the other: :class:`~smithing.pretrain.dbn.DBN` +
    :func:`~smithing.pretrain.dbn.train_dbn` (or :class:`~smithing.pretrain.autoencoder.
    StackedDAE` + :func:`~smithing.pretrain.autoencoder.train_sda`) exactly;
  - ``seed=s`` (*layer-seeded*): layer ``l`` is built and trained with its own generator
    seeded ``s + 7919 l`` on the data's device (binary samples of its codes, with
    ``propagate="samples"``, from one seeded ``s + 104729 (l + 1)``), and its inputs are the
    codes of the trained layers below computed through their encoders,
    ``s(x @ W.T + b)`` (what the unrolled MLP computes). Layer ``l`` then depends only on
    the data, the seed and the configuration of layers ``0..l``, so a deeper stack's first
    layers equal a shallower one's, and a :class:`StackCache` passed as ``cache=`` reuses them.

* :class:`Stack`: the trained stack (its kind's module, a ``DBN`` or ``StackedDAE``, in
  ``stack.module``; the per-layer histories); :meth:`Stack.to_mlp` unrolls it,
  :meth:`Stack.state_tensors` / :meth:`Stack.describe` / :meth:`Stack.from_state` express it as
  plain tensors plus a JSON-able description (for safetensors files) and back, exactly.
* :func:`finetune`: the supervised step, ``fit(model, data, **fit_options)``; ``fit`` is passed
  in (:func:`smithing.train.fit`: the trainers sit above ``pretrain/``, which does not import
  them).

Data are tensors: this module never loads a dataset by name (the experiment layer does, see
:mod:`smithing.experiment.pretrained`, which registers the ``"dbn"`` and ``"sda"`` sources of
the ``pretrained`` initializer on top of :func:`pretrain_stack` and holds the process's cache).

Files: the functional core (:func:`greedy_stack`, :func:`to_mlp`, :func:`pretrained_weights`,
:data:`OUTPUT_INITS`, the :class:`LayerPretrainer` protocol) lives in
:mod:`smithing.pretrain.greedy`, the spec and the layer kinds in
:mod:`smithing.pretrain.stack_spec`, the cache in :mod:`smithing.pretrain.stack_cache`; all
are re-exported here.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from smithing._registry import check
from smithing.history import History
from smithing.nn import MLP
from smithing.pretrain.autoencoder import CODE_ACTIVATIONS
from smithing.pretrain.greedy import (
    OUTPUT_INITS,
    GreedyResult,
    LayerPretrainer,
    greedy_stack,
    phase_progress,
    pretrained_weights,
    to_mlp,
)
from smithing.pretrain.stack_cache import StackCache, tensor_digest
from smithing.pretrain.stack_spec import (
    STACK_KINDS,
    StackKind,
    StackModule,
    StackSpec,
    _jsonable,
)

__all__ = [
    "OUTPUT_INITS",
    "STACK_KINDS",
    "GreedyResult",
    "LayerPretrainer",
    "Stack",
    "StackCache",
    "StackKind",
    "StackModule",
    "StackSpec",
    "finetune",
    "greedy_stack",
    "pretrain_stack",
    "pretrained_weights",
    "tensor_digest",
    "to_mlp",
]

FORMAT = "smithing.pretrain.stack"
VERSION = 1
_LAYER_SEED_STRIDE = 7919  # layer l of a layer-seeded stack trains with seed + 7919 l
_SAMPLE_SEED_STRIDE = 104729  # its codes are sampled with seed + 104729 (l + 1)
T = TypeVar("T")


# ------------------------------------------------------------------ the trained stack


class Stack:
    """A greedy stack: its :class:`StackSpec`, its kind's module (``DBN`` / ``StackedDAE``,
    holding the layers' parameters), the per-layer training histories (one
    :class:`~smithing.history.History` per layer) and ``meta`` (how it was
    trained: ``{"mode": "generator"}`` or ``{"mode": "seeded", "seed": s}``).

    ``encoders()``, ``upward(x)``, ``transform(x)`` and ``to_mlp(...)`` work alike for every
    kind; kind-specific methods are on ``stack.module`` (e.g. ``DBN.sample``).
    """

    def __init__(
        self,
        spec: StackSpec,
        module: StackModule,
        histories: Sequence[History] | None = None,
        meta: Mapping | None = None,
    ) -> None:
        self.spec = spec
        self.module = module
        self.histories = list(histories or [])
        self.meta = dict(meta or {})

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def layers(self) -> list[nn.Module]:
        """The layer modules (RBMs or autoencoders), bottom to top."""
        return STACK_KINDS.get(self.kind).layers_of(self.module)

    @property
    def sizes(self) -> tuple[int, ...]:
        return self.spec.sizes

    @property
    def members(self) -> int | None:
        return self.spec.members

    def encoders(self) -> list[tuple[Tensor, Tensor]]:
        """Each layer's ``(weight (*M, out, in), bias (*M, out))`` in ``nn.Linear`` layout."""
        return self.module.encoders()

    def upward(self, x: Tensor) -> list[Tensor]:
        """The codes of every layer for inputs ``x``, bottom to top."""
        return self.module.upward(x)

    def transform(self, x: Tensor) -> Tensor:
        """The top layer's codes for inputs ``x``."""
        return self.upward(x)[-1]

    def to_mlp(self, n_classes: int, activation: str | None = None, **kwargs) -> MLP:
        """Unroll into an ``MLP`` with a fresh output layer (:func:`~smithing.pretrain.greedy.
        to_mlp`: ``output_init``, ``member``, ``generator``, MLP options); ``activation``
        defaults to the stack's code activation."""
        return to_mlp(self, n_classes, activation or self.spec.activation, **kwargs)

    def state_tensors(self) -> dict[str, Tensor]:
        """Every layer's parameters and buffers as ``{"layers.<l>.<name>": tensor}``
        (detached contiguous copies: e.g. ``layers.0.W``, ``layers.0.b``, ``layers.0.c``)."""
        out = {}
        for i, layer in enumerate(self.layers):
            for name, t in layer.state_dict().items():
                out[f"layers.{i}.{name}"] = t.detach().clone(memory_format=torch.contiguous_format)
        return out

    def describe(self) -> dict:
        """A JSON-able description: format, spec, dtype, tensor shapes, histories, meta."""
        tensors = self.state_tensors()
        dtype = next(iter(tensors.values())).dtype
        return _jsonable(
            {
                "format": FORMAT,
                "version": VERSION,
                "spec": self.spec.to_dict(),
                "dtype": str(dtype).removeprefix("torch."),
                "tensors": {k: list(v.shape) for k, v in tensors.items()},
                "histories": [h.to_dict() if isinstance(h, History) else h for h in self.histories],
                "meta": self.meta,
            }
        )

    @classmethod
    def from_state(
        cls,
        description: Mapping,
        tensors: Mapping[str, Tensor],
        *,
        device: torch.device | str | None = None,
    ) -> Stack:
        """Rebuild a stack from :meth:`describe` and :meth:`state_tensors` (exact copies),
        on ``device`` (default: the tensors' device)."""
        check(
            description.get("format") == FORMAT,
            "description['format']",
            description.get("format"),
            repr(FORMAT),
        )
        check(
            description.get("version") == VERSION,
            "description['version']",
            description.get("version"),
            f"{VERSION}",
        )
        spec = StackSpec.from_dict(description["spec"])
        dtype = getattr(torch, str(description["dtype"]), None)
        check(
            isinstance(dtype, torch.dtype),
            "description['dtype']",
            description["dtype"],
            "a torch dtype name",
        )
        check(len(tensors) > 0, "tensors", tensors, "the stack's state tensors")
        if device is None:
            device = next(iter(tensors.values())).device
        device = torch.device(device)
        kind = STACK_KINDS.get(spec.kind)
        layers = _blank_layers(spec, kind, device, dtype)
        expected = {f"layers.{i}.{n}" for i, lay in enumerate(layers) for n in lay.state_dict()}
        missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        check(
            not missing and not unexpected,
            "tensors",
            f"missing {missing}, unexpected {unexpected}",
            "exactly the tensors of the described stack",
        )
        for i, layer in enumerate(layers):
            own = layer.state_dict()
            state = {}
            for name, ref in own.items():
                t = tensors[f"layers.{i}.{name}"]
                check(
                    tuple(t.shape) == tuple(ref.shape),
                    f"tensors['layers.{i}.{name}'].shape",
                    tuple(t.shape),
                    f"{tuple(ref.shape)}",
                )
                state[name] = t
            layer.load_state_dict(state)
        histories = [
            History.from_dict(dict(h))
            if isinstance(h, Mapping) and "epochs" in h
            else copy.deepcopy(h)
            for h in description.get("histories") or []
        ]
        return cls(spec, kind.assemble(layers), histories, description.get("meta"))

    def __repr__(self) -> str:
        m = "" if self.members is None else f", members={self.members}"
        return (
            f"Stack(kind={self.kind!r}, sizes={list(self.sizes)}, "
            f"activation={self.spec.activation!r}{m})"
        )


def _blank_layers(spec: StackSpec, kind: StackKind[Any, Any], device, dtype) -> list[nn.Module]:
    """Layers of ``spec`` whose parameters are about to be overwritten (a throwaway generator:
    building them leaves every other random state alone)."""
    g = torch.Generator(device=device)
    return [
        kind.layer(spec, i, generator=g, device=device, dtype=dtype) for i in range(spec.n_layers)
    ]


# ------------------------------------------------------------------ pretraining


def pretrain_stack(
    spec: StackSpec,
    data: Tensor,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    valid_data: Tensor | None = None,
    cache: StackCache | None = None,
    data_key: str | None = None,
    callback: Callable[[int, LayerPretrainer, History], None] | None = None,
    checkpoint: Any = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Stack:
    """Greedy layer-wise pretraining of ``spec`` on ``data (n, sizes[0])`` (or ``(M, n,
    sizes[0])`` for an ensemble); returns the trained :class:`Stack`.

    The layers are built on ``data``'s device with its dtype. Randomness (module docstring):
    ``generator=`` (shared: build every layer from it, then train them in order with it; None
    uses torch's global generator) or ``seed=`` (layer-seeded: layer ``l`` builds and trains
    with a generator seeded ``seed + 7919 l``; required for ``cache``). ``valid_data`` is
    propagated alongside and handed to each layer's training for monitoring. ``cache`` (a
    :class:`StackCache`, layer-seeded mode only) returns trained layers it holds instead of
    training them again; ``data_key`` names the data in its keys (default: a digest of the
    data's contents). ``callback(index, pretrainer, history)`` runs after each layer (also for
    a layer taken from the cache).

    ``checkpoint`` (a :class:`~smithing.checkpoint.Checkpointer`) makes the pretraining
    resumable: layer ``l`` trains with the child ``checkpoint.sub(f"layer{l}")`` (a rerun
    restores the finished layers without training them and continues the interrupted one,
    bitwise on CPU); a layer taken from the ``cache`` needs none. Fine-tuning is
    :func:`finetune`'s, e.g. ``finetune(..., checkpoint=checkpoint.sub("finetune"))``.
    ``progress(epoch, epochs, phase)`` follows every layer's epochs, ``phase = f"layer{l}"``
    (see :func:`~smithing.pretrain.greedy.greedy_stack`; a layer from the cache reports none).
    """
    check(isinstance(spec, StackSpec), "spec", type(spec).__name__, "a StackSpec")
    check(isinstance(data, Tensor), "data", type(data).__name__, "a tensor (n, n_inputs)")
    check(
        data.dim() in (2, 3) and data.shape[-1] == spec.sizes[0],
        "data.shape",
        tuple(data.shape),
        f"(n, {spec.sizes[0]})" + ("" if spec.members is None else f" or (M, n, {spec.sizes[0]})"),
    )
    check(
        generator is None or seed is None,
        "seed",
        seed,
        "None when a generator is given (one randomness mode: shared generator or layer seeds)",
    )
    check(
        cache is None or seed is not None,
        "cache",
        cache,
        "None unless seed= is given (only layer-seeded stacks can be cached)",
    )
    kind = STACK_KINDS.get(spec.kind)
    if seed is None:
        return _pretrain_shared(
            spec, kind, data, generator, valid_data, callback, checkpoint, progress
        )
    check(
        isinstance(seed, int) and not isinstance(seed, bool),
        "seed",
        seed,
        "an int (or None with a generator)",
    )
    return _pretrain_seeded(
        spec, kind, data, seed, valid_data, cache, data_key, callback, checkpoint, progress
    )


def _pretrain_shared(
    spec, kind, data, generator, valid_data, callback, checkpoint, progress=None
) -> Stack:
    # = DBN(...) / StackedDAE(...) then train_dbn / train_sda: the layers are built bottom to
    # top from the generator, then trained in order with it
    layers = [
        kind.layer(spec, i, generator=generator, device=data.device, dtype=data.dtype)
        for i in range(spec.n_layers)
    ]
    module = kind.assemble(layers)
    pretrainers = [kind.pretrainer(layer, spec, i) for i, layer in enumerate(layers)]
    result = greedy_stack(
        pretrainers,
        data,
        propagate=spec.propagate,
        valid_data=valid_data,
        generator=generator,
        callback=callback,
        checkpoint=checkpoint,
        progress=progress,
    )
    return Stack(spec, module, result.histories, {"mode": "generator"})


def _codes(x: Tensor, W: Tensor, b: Tensor, activation: str) -> Tensor:
    bias = b.unsqueeze(-2) if b.dim() >= 2 else b  # (*M, 1, out) against (*M, n, out)
    return CODE_ACTIVATIONS[activation][0](x @ W.transpose(-1, -2) + bias)  # s(x W^T + b)


def _pretrain_seeded(
    spec, kind, data, seed, valid_data, cache, data_key, callback, checkpoint, progress=None
) -> Stack:
    dev, dtype = data.device, data.dtype
    if cache is not None:
        data_key = data_key if data_key is not None else tensor_digest(data)
        valid_key = None if valid_data is None else tensor_digest(valid_data)
    x, valid = data, valid_data
    layers, histories = [], []
    for i in range(spec.n_layers):
        key = None
        if cache is not None:
            key = cache.key(
                spec, i, seed=seed, data_key=data_key, device=dev, dtype=dtype, valid_key=valid_key
            )
        hit = cache.get(key) if key is not None else None
        if hit is not None:
            layer = kind.layer(
                spec, i, generator=torch.Generator(device=dev), device=dev, dtype=dtype
            )  # parameters overwritten next
            state, history = hit
            layer.load_state_dict(state)
            pretrainer = kind.pretrainer(layer, spec, i)
        else:
            g = torch.Generator(device=dev).manual_seed(seed + _LAYER_SEED_STRIDE * i)
            layer = kind.layer(spec, i, generator=g, device=dev, dtype=dtype)
            pretrainer = kind.pretrainer(layer, spec, i)
            kw: dict[str, Any] = {}
            if checkpoint is not None:
                kw["checkpoint"] = checkpoint.sub(f"layer{i}")
            if progress is not None and "progress" in inspect.signature(pretrainer.fit).parameters:
                epochs = int(getattr(pretrainer, "train_kwargs", {}).get("epochs", 0))
                kw["progress"] = phase_progress(progress, epochs, f"layer{i}")
            history = pretrainer.fit(x, valid=valid, generator=g, **kw)
            if key is not None:
                cache.put(key, layer.state_dict(), history)
        layers.append(layer)
        histories.append(history)
        if callback is not None:
            callback(i, pretrainer, history)
        if i < spec.n_layers - 1:
            with torch.no_grad():
                W, b = layer.encoder()  # (*M, out, in), (*M, out)
                x = _codes(x, W, b, spec.activation)
                if spec.propagate == "samples":
                    gs = torch.Generator(device=dev).manual_seed(
                        seed + _SAMPLE_SEED_STRIDE * (i + 1)
                    )
                    u = torch.rand(x.shape, generator=gs, dtype=x.dtype, device=gs.device)
                    x = (u.to(x.device) < x).to(x.dtype)  # h ~ Bernoulli(s(x W^T + b))
                if valid is not None:
                    valid = _codes(valid.to(dtype), W, b, spec.activation)
    return Stack(spec, kind.assemble(layers), histories, {"mode": "seeded", "seed": seed})


# ------------------------------------------------------------------ fine-tuning


def finetune(
    model: nn.Module | Sequence[nn.Module], data: Any, *, fit: Callable[..., T], **fit_options
) -> T:
    """Supervised fine-tuning of an unrolled stack: ``fit(model, data, **fit_options)``.

    ``fit`` is the trainer, :func:`smithing.train.fit` (or
    :func:`smithing.train.ensemble.fit_ensemble` for a list of unrolled members), passed in
    because the trainers sit above :mod:`smithing.pretrain`; ``fit_options`` are its
    arguments (epochs, lr, batch_size, optimizer, early_stopping, seed, device, checkpoint,
    ...; a multi-phase run passes ``checkpoint=its_checkpoint.sub("finetune")``). Returns
    what ``fit`` returns (a ``History``, or a list of them).
    """
    check(callable(fit), "fit", fit, "a training function such as smithing.train.fit")
    return fit(model, data, **fit_options)
