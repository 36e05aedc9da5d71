"""The one regularizer protocol the trainers call (``fit``, ``fit_ensemble``, ``fit_sequence``).

A *regularizer* is any object with one or more of these methods (each is optional)::

    penalty(params) -> Tensor | float   # added to the training loss before backward()
    before_step(params, lr) -> None     # after backward(), before optimizer.step()
    after_step(params, lr) -> None      # after optimizer.step()

and, optionally, ``for_members(n)`` (see *Ensembles*) and ``state_dict()`` /
``load_state_dict(state)`` (the trainers save that state in their checkpoints). One training step
is then::

    loss = loss0 + reg.penalty(params)  # L2, L1 subgradient, an RNN's identity penalty
    loss.backward()
    reg.before_step(params, lr)         # decoupled weight decay w <- (1 - lr wd) w
    optimizer.step()
    reg.after_step(params, lr)          # max-norm, proximal L1, pruning masks, RNN constraints

``before_step`` and ``after_step`` run under ``torch.no_grad()``.

* ``params`` is what is being trained: the ``nn.Module`` itself (``fit``, ``fit_sequence``), or a
  dict ``name -> tensor`` of the stacked parameters of an ensemble (``fit_ensemble``; every
  tensor has a leading *members* axis). The objects of :mod:`smithing.regularize` accept a
  module, a dict or ``(name, tensor)`` pairs alike (:func:`named_params`).
* ``lr`` is the learning rate in effect for this step: a float (``fit``) or a ``(members,)``
  tensor (``fit_ensemble``; 0 for a member that no longer trains).

**Ensembles.** ``fit_ensemble`` first calls ``reg.for_members(n)`` when the object has it; the
objects of :mod:`smithing.regularize` return their stacked form there (``members_axis=True``:
strengths may be ``(members,)`` tensors, one per member, and ``penalty`` returns one penalty per
member, shape ``(members,)``). Members never interact: the trainer sums the per-member losses,
so each member's gradient is that of its own loss and penalty.

**Composition.** A list or tuple of regularizers is one regularizer (:class:`Regularizers`):
the penalties are summed, ``before_step`` and ``after_step`` run in the order given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeGuard, runtime_checkable

from torch import Tensor, nn

from smithing._registry import check

__all__ = [
    "HOOKS",
    "Regularizer",
    "Regularizers",
    "Stateful",
    "as_regularizer",
    "for_members",
    "hook",
    "hooks",
    "named_params",
    "parts",
    "stateful_objects",
]

#: the methods of the protocol; a regularizer has at least one of them
HOOKS = ("penalty", "before_step", "after_step")


@runtime_checkable
class Regularizer(Protocol):
    """What the trainers call (every method optional; see the module docstring)."""

    def penalty(self, params: Any) -> Tensor | float: ...

    def before_step(self, params: Any, lr: float | Tensor) -> None: ...

    def after_step(self, params: Any, lr: float | Tensor) -> None: ...


def named_params(params: Any) -> list[tuple[str, Tensor]]:
    """``(name, tensor)`` pairs of a module (its ``named_parameters()``), a dict, or pairs."""
    if isinstance(params, nn.Module):
        return list(params.named_parameters())
    if isinstance(params, Mapping):
        return list(params.items())
    check(
        isinstance(params, Iterable) and not isinstance(params, (Tensor, str)),
        "params",
        type(params).__name__,
        "an nn.Module, a dict name -> tensor or (name, tensor) pairs",
    )
    return list(params)


class Regularizers:
    """Several regularizers as one: penalties summed, steps applied in order."""

    parts: list[object]

    def __init__(self, regularizers: Sequence[object]) -> None:
        flat: list[object] = []
        for r in regularizers:
            flat.extend(r.parts if isinstance(r, Regularizers) else [as_regularizer(r)])
        self.parts = flat

    def __repr__(self) -> str:
        return f"Regularizers({self.parts!r})"

    def penalty(self, params: Any) -> Tensor | float:
        total: Tensor | float | None = None
        for hook in hooks(self.parts, "penalty"):
            term = hook(params)
            total = term if total is None else total + term
        return 0.0 if total is None else total

    def before_step(self, params: Any, lr: float | Tensor) -> None:
        for hook in hooks(self.parts, "before_step"):
            hook(params, lr)

    def after_step(self, params: Any, lr: float | Tensor) -> None:
        for hook in hooks(self.parts, "after_step"):
            hook(params, lr)

    def for_members(self, n: int) -> Regularizers:
        return Regularizers([for_members(r, n) for r in self.parts])


def hooks(regularizers: Sequence[object], name: str) -> list[Any]:
    """The bound ``name`` methods of ``regularizers`` that exist (an attribute set to None, as
    in an unset field, counts as absent)."""
    found = [getattr(r, name, None) for r in regularizers]
    return [h for h in found if callable(h)]


def hook(regularizer: object | None, name: str) -> Any | None:
    """``regularizer.name`` if it is a method of the protocol it has, else None."""
    found = getattr(regularizer, name, None)
    return found if callable(found) else None


def as_regularizer(regularizer: object) -> object | None:
    """``regularizer`` checked against the protocol; a list or tuple becomes
    :class:`Regularizers`; None (or an empty list) stays None.

    An object with none of ``penalty``, ``before_step``, ``after_step`` raises ``ValueError``
    (it would otherwise be ignored without a word).
    """
    if regularizer is None:
        return None
    if isinstance(regularizer, (list, tuple)):
        return Regularizers(regularizer) if regularizer else None
    check(
        any(callable(getattr(regularizer, h, None)) for h in HOOKS),
        "regularizer",
        regularizer,
        "an object with penalty(params), before_step(params, lr) and/or after_step(params, lr) "
        "(smithing.regularize: Penalty, MaxNorm, PruneMask), or a list of them",
    )
    return regularizer


def for_members(regularizer: object, n: int) -> object:
    """The form of ``regularizer`` that acts on stacked ``(members, ...)`` parameters."""
    convert = getattr(regularizer, "for_members", None)
    return convert(n) if callable(convert) else regularizer


def parts(regularizer: object | None) -> list[object]:
    """The individual regularizers inside ``regularizer`` (for their checkpoint state)."""
    if regularizer is None:
        return []
    if isinstance(regularizer, Regularizers):
        return list(regularizer.parts)
    return [regularizer]


class Stateful(Protocol):
    """A regularizer or callback whose state the trainers save in their checkpoints."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def _is_stateful(obj: object) -> TypeGuard[Stateful]:
    return hasattr(obj, "load_state_dict")


def stateful_objects(objects: Iterable[object]) -> list[Stateful]:
    """The ``objects`` (regularizers, callbacks) that have ``load_state_dict``: those whose
    ``state_dict()`` a trainer's checkpoint saves and restores."""
    return [o for o in objects if _is_stateful(o)]
