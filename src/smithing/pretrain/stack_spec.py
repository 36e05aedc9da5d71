"""What a greedy stack is: its layer kinds (:data:`STACK_KINDS`) and :class:`StackSpec`.

Part of the one pretraining API, :mod:`smithing.pretrain.stack` (which re-exports these names):
a :class:`StackSpec` says which kind of layers (RBMs or denoising autoencoders), of which sizes,
trained with which settings; a :class:`StackKind` knows how to build, train and assemble layers
of its kind. JSON-able (:meth:`StackSpec.to_dict`), so a stack can be saved as tensors plus a
description.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from torch import Tensor, nn

from smithing._registry import Registry, check
from smithing.pretrain.autoencoder import (
    CODE_ACTIVATIONS,
    DAEPretrainer,
    DenoisingAutoencoder,
    StackedDAE,
    dae_layer,
)
from smithing.pretrain.dbn import DBN, RBMPretrainer, rbm_layer
from smithing.pretrain.greedy import LayerPretrainer, per_layer
from smithing.pretrain.rbm import BernoulliRBM

__all__ = ["STACK_KINDS", "StackKind", "StackModule", "StackSpec"]


# ------------------------------------------------------------------ layer kinds


class StackModule(Protocol):
    """What a kind's assembled module (an ``nn.Module``: ``DBN``, ``StackedDAE``) offers every
    kind alike: the layers' encoders in ``nn.Linear`` layout and the codes of every layer."""

    def encoders(self) -> list[tuple[Tensor, Tensor]]: ...

    def upward(self, x: Tensor) -> list[Tensor]: ...


L = TypeVar("L", bound=nn.Module)  # a kind's layer (BernoulliRBM, DenoisingAutoencoder)
S = TypeVar("S", bound=StackModule)  # its assembled module (DBN, StackedDAE)


@dataclass(frozen=True)
class StackKind(Generic[L, S]):
    """One kind of greedy layer.

    ``layer(spec, index, *, generator, device, dtype)`` builds layer ``index`` of ``spec``
    (untrained); ``pretrainer(layer, spec, index)`` wraps it as a
    :class:`~smithing.pretrain.greedy.LayerPretrainer` with the layer's training settings;
    ``assemble(layers)`` makes the kind's module (``encoders()``, ``upward``, ``to_mlp``) of
    trained layers; ``layers_of(module)`` lists them back. ``options`` are the constructor
    options a spec may set, ``activations`` the code activations the kind supports.
    """

    name: str
    layer: Callable[..., L]
    pretrainer: Callable[[L, StackSpec, int], LayerPretrainer]
    assemble: Callable[[list[L]], S]
    layers_of: Callable[[S], list[L]]
    options: tuple[str, ...]
    activations: tuple[str, ...]


def _dbn_layer(spec: StackSpec, index: int, *, generator, device, dtype) -> BernoulliRBM:
    opts = {k: v for k, v in spec.options.items() if k != "init_visible_bias"}
    return rbm_layer(
        list(spec.sizes),
        index,
        members=spec.members,
        generator=generator,
        device=device,
        dtype=dtype,
        **opts,
    )


def _dbn_pretrainer(layer: BernoulliRBM, spec: StackSpec, index: int) -> LayerPretrainer:
    return RBMPretrainer(
        layer,
        init_visible_bias=spec.options.get("init_visible_bias", True),
        **spec.layer_settings[index],
    )


def _sda_layer(spec: StackSpec, index: int, *, generator, device, dtype) -> DenoisingAutoencoder:
    return dae_layer(
        list(spec.sizes),
        index,
        activation=spec.activation,
        members=spec.members,
        generator=generator,
        device=device,
        dtype=dtype,
        **spec.options,
    )


def _sda_pretrainer(layer: DenoisingAutoencoder, spec: StackSpec, index: int) -> LayerPretrainer:
    return DAEPretrainer(layer, **spec.layer_settings[index])


#: layer kinds of a greedy stack: ``"dbn"`` (RBMs) and ``"sda"`` (denoising autoencoders)
STACK_KINDS: Registry[StackKind[Any, Any]] = Registry("pretraining stack")
STACK_KINDS.register(
    "dbn",
    StackKind(
        "dbn",
        _dbn_layer,
        _dbn_pretrainer,
        DBN.from_rbms,
        lambda module: list(module.rbms),
        options=("visible", "learn_variance", "init_std", "init_visible_bias"),
        activations=("sigmoid",),
    ),
    description="Deep Belief Network: RBMs trained by CD-k / PCD (train_rbm)",
)
STACK_KINDS.register(
    "sda",
    StackKind(
        "sda",
        _sda_layer,
        _sda_pretrainer,
        StackedDAE.from_layers,
        lambda module: list(module.daes),
        options=("tied", "loss"),
        activations=tuple(CODE_ACTIVATIONS),
    ),
    description="stacked denoising autoencoders (Vincent et al. 2010; train_autoencoder)",
)


# ------------------------------------------------------------------ the specification


T = TypeVar("T")


def _jsonable(obj: T) -> T:
    """``obj`` as JSON would give it back: tuples become lists, anything else its ``repr``."""
    return json.loads(json.dumps(obj, default=repr))


def _per_layer(layers, n: int) -> tuple[dict, ...]:
    return tuple(per_layer(layers, n))


@dataclass(frozen=True)
class StackSpec:
    """The configuration of a greedy stack (JSON-able through :meth:`to_dict`).

    ``kind``: a name in :data:`STACK_KINDS` (``"dbn"`` or ``"sda"``). ``sizes``: ``[n_inputs,
    n_1, ..., n_L]``. ``layers``: the training settings of every layer, one mapping for all or
    one per layer: :func:`~smithing.pretrain.rbm.train_rbm`'s keyword arguments for a DBN
    (epochs, lr, batch_size, k, method, momentum, weight_decay, ...),
    :func:`~smithing.pretrain.autoencoder.train_autoencoder`'s for an SdA (epochs, lr,
    batch_size, corruption, rate, emphasis, contractive, ...). ``activation``: the codes'
    (sigmoid for a DBN; sigmoid, tanh or relu for an SdA). ``propagate``: the next layer is
    trained on the codes (``"probs"``) or on binary samples of them (``"samples"``, sigmoid
    codes only). ``members``: an ensemble of that many independent stacks (leading members
    axis). ``options``: the layers' constructor options, for a DBN ``visible``
    (``"bernoulli"`` or ``"gaussian"``, bottom RBM only), ``learn_variance``, ``init_std``,
    ``init_visible_bias`` (Hinton's guide, Sec. 8; default True); for an SdA ``tied`` and
    ``loss`` (bottom layer only; upper layers reconstruct codes, see
    :func:`~smithing.pretrain.autoencoder.dae_layer`).
    """

    kind: str
    sizes: tuple[int, ...]
    layers: tuple[dict, ...] | Mapping | Sequence[Mapping] | None = None
    activation: str = "sigmoid"
    propagate: str = "probs"
    members: int | None = None
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        kind = STACK_KINDS.get(self.kind)
        sizes = tuple(self.sizes)
        check(
            len(sizes) >= 2
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes),
            "sizes",
            list(self.sizes),
            "at least two positive ints [n_inputs, n_hidden_1, ...]",
        )
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "layers", _per_layer(self.layers, len(sizes) - 1))
        check(
            self.activation in kind.activations,
            "activation",
            self.activation,
            f"one of {kind.activations} for a {self.kind!r} stack",
        )
        check(
            self.propagate in ("probs", "samples"),
            "propagate",
            self.propagate,
            "'probs' or 'samples'",
        )
        check(
            self.propagate == "probs" or self.activation == "sigmoid",
            "propagate",
            self.propagate,
            "'probs' for non-sigmoid codes (only sigmoid codes can be sampled)",
        )
        check(
            self.members is None
            or (isinstance(self.members, int) and not isinstance(self.members, bool))
            and self.members > 0,
            "members",
            self.members,
            "None or a positive int",
        )
        options = dict(self.options or {})
        for key in options:
            check(
                key in kind.options,
                f"options[{key!r}]",
                options[key],
                f"an option of a {self.kind!r} stack ({', '.join(kind.options)})",
            )
        object.__setattr__(self, "options", options)

    @property
    def layer_settings(self) -> tuple[dict, ...]:
        """``layers`` as ``__post_init__`` leaves it: one dict of settings per layer."""
        return cast("tuple[dict, ...]", self.layers)  # normalized by __post_init__

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def prefix(self, n: int) -> StackSpec:
        """The spec of the bottom ``n`` layers (what layer ``n - 1`` of a greedy stack sees)."""
        check(1 <= n <= self.n_layers, "n", n, f"1..{self.n_layers}")
        return StackSpec(
            self.kind,
            self.sizes[: n + 1],
            self.layer_settings[:n],
            self.activation,
            self.propagate,
            self.members,
            self.options,
        )

    def to_dict(self) -> dict:
        """A JSON-able dict; training settings that are not JSON (callables) become their
        ``repr`` (descriptive only: such a dict rebuilds a stack but cannot retrain it)."""
        return _jsonable(
            {
                "kind": self.kind,
                "sizes": list(self.sizes),
                "layers": [dict(s) for s in self.layer_settings],
                "activation": self.activation,
                "propagate": self.propagate,
                "members": self.members,
                "options": dict(self.options),
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping) -> StackSpec:
        allowed = ("kind", "sizes", "layers", "activation", "propagate", "members", "options")
        unknown = sorted(set(d) - set(allowed))
        check(not unknown, "spec", unknown, f"keys among {list(allowed)}")
        return cls(**dict(d))
