"""Masks that persist: :class:`PruneMask` (pruned weights stay zero through any optimizer) and
:class:`PruneReport`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from smithing._registry import check

__all__ = [
    "PruneMask",
    "PruneReport",
]

Objective = Callable[[dict[str, Tensor]], Tensor]


# --------------------------------------------------------------------------- masks
class PruneMask:
    """Boolean keep-masks by parameter name (``True`` = kept, ``False`` = pruned).

    A regularizer of the trainers' protocol (:mod:`smithing.regularize.protocol`): its
    :meth:`before_step` is :meth:`apply_grad_` (the pruned weights' gradients are zeroed before
    every optimizer step, so no optimizer state, such as a momentum buffer or Adam's moments,
    builds up where a weight is pruned) and its :meth:`after_step` is :meth:`apply_`
    (``w <- m * w`` after every optimizer step). The kept weights train exactly as without the
    first hook: the optimizers update each element on its own.
    """

    def __init__(self, masks: dict[str, Tensor]) -> None:
        self.masks = {name: m.detach().to(torch.bool).clone() for name, m in masks.items()}

    @classmethod
    def ones_like(cls, named_params: Iterable[tuple[str, Tensor]]) -> PruneMask:
        return cls({n: torch.ones_like(p, dtype=torch.bool) for n, p in named_params})

    def _params(self, model: nn.Module | Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        named: Mapping[str, Tensor]
        named = model if isinstance(model, Mapping) else dict(model.named_parameters())
        missing = [n for n in self.masks if n not in named]
        check(not missing, "model", missing, "parameters named as in the mask")
        return named

    @torch.no_grad()
    def apply_(self, model: nn.Module | Mapping[str, Tensor]) -> None:
        """Zero the pruned weights in place (call after every optimizer step)."""
        named = self._params(model)
        for name, m in self.masks.items():
            named[name].masked_fill_(~m.to(named[name].device), 0)  # w <- m * w

    @torch.no_grad()
    def apply_grad_(self, model: nn.Module | Mapping[str, Tensor]) -> None:
        """Zero the gradients of pruned weights (keeps momentum buffers from growing there)."""
        named = self._params(model)
        for name, m in self.masks.items():
            g = named[name].grad
            if g is not None:
                g.masked_fill_(~m.to(g.device), 0)

    def before_step(self, params: nn.Module | dict[str, Tensor], lr: object = None) -> None:
        """The protocol's hook before ``optimizer.step()``: :meth:`apply_grad_` (``lr``
        unused)."""
        self.apply_grad_(params)

    def after_step(self, params: nn.Module | dict[str, Tensor], lr: object = None) -> None:
        """The protocol's hook after ``optimizer.step()``: :meth:`apply_` (``lr`` unused)."""
        self.apply_(params)

    def for_members(self, n: int) -> PruneMask:
        """The same mask on stacked ``(members, ...)`` parameters: it broadcasts over the members
        axis (a ``(members, ...)`` mask gives each member its own)."""
        return self

    def attach(self, optimizer: torch.optim.Optimizer, model: nn.Module):
        """Apply the mask after every ``optimizer.step()``; returns the removable hook handle."""
        return optimizer.register_step_post_hook(lambda *_: self.apply_(model))

    def n_pruned(self) -> int:
        return int(sum((~m).sum() for m in self.masks.values()))

    def n_total(self) -> int:
        return int(sum(m.numel() for m in self.masks.values()))

    def sparsity(self) -> float:
        """Fraction of masked entries that are pruned."""
        return self.n_pruned() / max(1, self.n_total())

    def per_param(self) -> dict[str, float]:
        return {n: float((~m).float().mean()) for n, m in self.masks.items()}

    def state_dict(self) -> dict[str, Tensor]:
        return {n: m.clone() for n, m in self.masks.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`state_dict` returned (the trainers' checkpoints call it)."""
        self.masks = {n: m.detach().to(torch.bool).clone() for n, m in state.items()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> PruneMask:
        return cls(state)


@dataclass
class PruneReport:
    """What :func:`prune` did."""

    method: str
    fraction: float
    n_total: int  # weights subject to pruning
    n_pruned: int  # pruned in total (including earlier masks)
    per_param: dict[str, float]  # fraction pruned per parameter
    saliency: dict[str, Tensor]  # saliencies before this call's pruning (OBS: initial L_q)
    predicted_increase: float | None  # OBD: sum of removed s_k; OBS: sum of sequential L_q
    loss_before: float | None = None
    loss_after: float | None = None
    removed_order: list[tuple[str, int]] = field(default_factory=list)  # OBS: (name, flat index)
