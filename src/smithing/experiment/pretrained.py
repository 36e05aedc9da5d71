"""The ``"dbn"`` and ``"sda"`` sources of the ``pretrained`` initializer (datasets by name).

``smithing.init.apply(model, "pretrained", source="sda", dataset="digits",
layer_options={...})`` pretrains the model's hidden layers greedily and copies the encoders
into them. The initializer itself (:func:`smithing.init.apply`'s ``"pretrained"`` rule) only
copies ``(W, b)`` pairs; this module, the layer that owns the data, registers the two sources
into :data:`smithing.init.PRETRAINED` when :mod:`smithing.experiment` is imported. Each source
resolves its data (a ``dataset`` name through :func:`smithing.data.load`, or a tensor /
``Dataset`` given as ``data``) and calls the one pretraining path,
:func:`smithing.pretrain.stack.pretrain_stack`, in its layer-seeded mode: one draw from the
initializer's ``generator`` gives the stack's seed, and layer ``l`` trains with a generator
seeded from that seed and ``l``, so a deeper network with the same settings gets the same
first layers as a shallower one.

**The cache.** Trained layers are kept in one :class:`~smithing.pretrain.stack.StackCache` per
process (:func:`stack_cache`, at most 32 layers; :func:`clear_cache` empties it), keyed by the
layer's configuration, the seed, the device and the data (the dataset name, its options and
``n_train``; a digest of a given tensor). It changes nothing but the time: in a study where
many networks of growing depth share a seed and settings (``pretraining-depth``), each greedy
layer is trained once. Pass ``cache=False`` to bypass it.

Without ``import smithing.experiment`` the sources are not registered and
``init.apply(model, "pretrained", source="sda", ...)`` says so; pretraining on tensors without
the experiment layer is ``pretrain_stack(...)`` then ``init.apply(model, "pretrained",
source=stack.encoders())``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import torch

from smithing import init as _init
from smithing._registry import check

__all__ = [
    "SOURCES",
    "clear_cache",
    "file_source",
    "pretrained_source",
    "register",
    "stack_cache",
]

#: the stack kinds registered as sources of the ``pretrained`` initializer
SOURCES = ("dbn", "sda")
CACHE_LIMIT = 32  # trained layers kept per process

_CACHE = None


def stack_cache():
    """This process's :class:`~smithing.pretrain.stack.StackCache` (created on first use)."""
    global _CACHE
    if _CACHE is None:
        from smithing.pretrain.stack import StackCache

        _CACHE = StackCache(limit=CACHE_LIMIT)
    return _CACHE


def clear_cache() -> None:
    """Forget every layer the ``pretrained`` sources trained in this process."""
    if _CACHE is not None:
        _CACHE.clear()


def _source_data(data, dataset, dataset_options, n_train, device) -> tuple[torch.Tensor, str]:
    """The pretraining inputs ``(n, n_inputs)`` on ``device`` and their cache key."""
    from smithing.pretrain.stack import tensor_digest

    if data is not None:
        check(dataset is None, "dataset", dataset, "None when data is given")
        x = data if isinstance(data, torch.Tensor) else data.train.x
        x = x.reshape(x.shape[0], -1)[:n_train].to(device)
        return x, "tensor:" + tensor_digest(x)
    check(dataset is not None, "data", data, "a tensor or Dataset, or a dataset= name")
    from smithing.data import load

    ds = load(dataset, device=device, **(dataset_options or {}))
    x = ds.train.x.reshape(len(ds.train), -1)[:n_train]
    key = json.dumps([dataset, dataset_options or {}, n_train], sort_keys=True, default=str)
    return x, key


def pretrained_source(kind: str) -> Callable:
    """The ``pretrained`` initializer's source for stacks of ``kind`` (``"dbn"`` or ``"sda"``)."""

    def source(
        model,
        layers,
        *,
        generator: torch.Generator | None = None,
        data=None,
        dataset: str | None = None,
        dataset_options: dict | None = None,
        n_train: int | None = None,
        layer_options: Mapping | Sequence[Mapping] | None = None,
        n_layers: int | None = None,
        activation: str | None = None,
        propagate: str = "probs",
        stack_options: dict | None = None,
        device: str | None = None,
        cache: bool = True,
        checkpoint=None,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        from smithing.pretrain.stack import StackSpec, pretrain_stack

        hidden = len(layers) - 1 if n_layers is None else n_layers
        check(
            isinstance(hidden, int) and 1 <= hidden <= len(layers),
            "n_layers",
            n_layers,
            f"1..{len(layers)} layers to pretrain (default: all but the output layer)",
        )
        mods = [m for _, m in layers[:hidden]]
        sizes = [mods[0].in_features] + [m.out_features for m in mods]
        act = activation or getattr(model, "activation", None) or "sigmoid"
        spec = StackSpec(
            kind,
            sizes,
            layer_options,
            activation=act,
            propagate=propagate,
            options=dict(stack_options or {}),
        )
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        x, data_key = _source_data(data, dataset, dataset_options, n_train, dev)
        check(x.shape[-1] == sizes[0], "data", tuple(x.shape), f"inputs of size {sizes[0]}")
        # one draw from the caller's generator seeds this stack (layer l: seed + 7919 l)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        stack = pretrain_stack(
            spec,
            x,
            seed=seed,
            cache=stack_cache() if cache else None,
            data_key=data_key,
            checkpoint=checkpoint,
        )
        return [(W.cpu(), b.cpu()) for W, b in stack.encoders()]

    source.__doc__ = f"""Pretrain the model's hidden layers as a {kind.upper()} (greedy, bottom-up)
    and return their ``(W, b)``: ``smithing.init.apply(model, "pretrained", source="{kind}",
    dataset="digits", layer_options={{...}})``.

    The layer sizes are those of the first ``n_layers`` selected layers (default all but the
    output layer); ``activation`` defaults to ``model.activation``. Data: ``data`` (a tensor
    ``(n, n_inputs)`` or a Dataset) or ``dataset`` (a name for :func:`smithing.data.load` with
    ``dataset_options``), its first ``n_train`` training inputs. ``layer_options``: one mapping
    of per-layer training arguments or one per layer; ``stack_options`` are the
    :class:`~smithing.pretrain.stack.StackSpec`'s ``options``. Pretraining runs on ``device``
    (default CUDA when available: the model is still on the CPU when initializers run), with
    :func:`~smithing.pretrain.stack.pretrain_stack`'s layer-seeded mode, seeded by one draw of
    ``generator``; ``cache`` uses this process's :func:`stack_cache`; ``checkpoint`` (a
    :class:`~smithing.checkpoint.Checkpointer`) checkpoints the layers it trains (one child per
    layer), so that a resumed run does not pretrain them again.
    """
    return source


def file_source(
    model,
    layers,
    *,
    generator: torch.Generator | None = None,
    path: str,
    n_layers: int | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The hidden layers of a saved model file (:func:`smithing.models.save_model`): a
    pretrained stack's encoders, or an MLP's hidden layers (not its output layer), the first
    ``n_layers`` of them (default: as many as the model being initialized has hidden layers):
    ``smithing.init.apply(model, "pretrained", source="file", path="dbn.safetensors")``."""
    from smithing.models import describe_model, load_model

    kind = describe_model(path)["kind"]
    obj = load_model(path)
    if kind == "stack":
        pairs = [(W.detach().cpu(), b.detach().cpu()) for W, b in obj.encoders()]
    elif kind == "mlp":
        pairs = [(m.weight.detach().cpu(), m.bias.detach().cpu()) for m in obj.linears[:-1]]
    else:
        raise ValueError(f"{path}: a saved {kind!r} has no hidden layers to copy")
    k = len(layers) - 1 if n_layers is None else n_layers
    check(
        isinstance(k, int) and 1 <= k <= len(pairs),
        "n_layers",
        n_layers,
        f"1..{len(pairs)} (the saved model's hidden layers)",
    )
    return pairs[:k]


def register() -> None:
    """Register the ``"dbn"``, ``"sda"`` and ``"file"`` sources (idempotent; done on import)."""
    for kind in SOURCES:
        if kind not in _init.PRETRAINED:
            _init.register_pretrained(
                kind,
                pretrained_source(kind),
                description=f"greedy {kind.upper()} pretraining of the hidden layers",
            )
    if "file" not in _init.PRETRAINED:
        _init.register_pretrained(
            "file", file_source, description="the hidden layers of a saved stack or MLP file"
        )


register()
