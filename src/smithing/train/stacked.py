"""Stacked same-shape models for the batched ensemble trainer (:func:`fit_ensemble`).

:class:`StackedModel` stacks the members' parameters and buffers along a leading *members* axis
(``torch.func.stack_module_state``) and runs the forward pass as ``vmap`` over
``torch.func.functional_call`` (``randomness="different"``: every member draws its own dropout
masks); :func:`member_loss` and :func:`evaluate_members` give each member its own loss and
metrics; :class:`MemberHooks` is a regularizer made of functions on the stacked parameters.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from smithing._registry import check
from smithing.data.base import Split

__all__ = ["MemberHooks", "MemberLoss", "StackedModel", "evaluate_members", "member_loss"]


@dataclass
class MemberHooks:
    """A regularizer of the protocol (:mod:`smithing.regularize.protocol`) made of functions
    on the stacked parameters.

    ``penalty(params) -> Tensor (members,)`` is added to each member's loss;
    ``before_step(params, lrs)`` runs before and ``after_step(params, lrs)`` after each
    optimizer step, where ``params`` maps names to stacked tensors ``(members, ...)`` and
    ``lrs`` is the ``(members,)`` tensor of current learning rates (0 for a frozen member).
    Unset hooks are skipped.
    """

    penalty: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None
    after_step: Callable[[dict[str, torch.Tensor], torch.Tensor], None] | None = None
    before_step: Callable[[dict[str, torch.Tensor], torch.Tensor], None] | None = None


class StackedModel:
    """Stacked parameters of same-shape models and a vmapped forward pass."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        check(len(models) > 0, "models", models, "at least one model")
        sig = _signature(models[0])
        for i, m in enumerate(models):
            if _signature(m) != sig:
                raise ValueError(
                    f"models[{i}] has a different architecture than models[0]; an ensemble "
                    "needs same-shape members"
                )
        params, buffers = stack_module_state(list(models))
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.buffers = buffers
        self.base = copy.deepcopy(models[0]).to("meta")
        self.n_members = len(models)

        def call(p, b, x):
            return functional_call(self.base, (p, b), (x,))

        self._train_fwd = vmap(call, in_dims=(0, 0, 0), randomness="different")
        self._eval_fwd = vmap(call, in_dims=(0, 0, None), randomness="different")

    def forward_train(self, xb: torch.Tensor) -> torch.Tensor:
        """``xb`` (members, batch, ...) -> outputs (members, batch, out)."""
        self.base.train()
        return self._train_fwd(self.params, self.buffers, xb)

    @torch.no_grad()
    def forward_eval(self, x: torch.Tensor) -> torch.Tensor:
        """Shared inputs ``x`` (batch, ...) -> outputs (members, batch, out), eval mode."""
        self.base.eval()
        return self._eval_fwd(self.params, self.buffers, x)

    def member_state(self, m: int) -> dict[str, torch.Tensor]:
        out = {k: v[m].detach().clone() for k, v in self.params.items()}
        out.update({k: v[m].clone() for k, v in self.buffers.items()})
        return out

    @torch.no_grad()
    def write_back(self, models: Sequence[nn.Module]) -> None:
        """Copy each member's parameters and buffers (e.g. BatchNorm running statistics) into
        its original module."""
        for m, model in enumerate(models):
            model.load_state_dict(self.member_state(m), strict=False)


def _signature(model: nn.Module):
    return (
        type(model),
        tuple((k, tuple(v.shape)) for k, v in model.named_parameters()),
        tuple((k, tuple(v.shape)) for k, v in model.named_buffers()),
        repr(model),
    )


def _member_losses(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """out (M, B, C), y (M, B) -> per-member mean loss (M,)."""
    M, B = y.shape[0], y.shape[1]
    if task == "classification":
        per = F.cross_entropy(out.reshape(M * B, -1), y.reshape(-1), reduction="none")
        return per.view(M, B).mean(1)
    return ((out.reshape(y.shape) - y) ** 2).reshape(M, B, -1).mean((1, 2))


def _member_errors(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """out (M, N, C), y (N,) -> summed error per member (M,)."""
    if task == "classification":
        return (out.argmax(-1) != y.unsqueeze(0)).sum(1).double()
    return (
        ((out.reshape(out.shape[0], *y.shape) - y.unsqueeze(0)) ** 2)
        .reshape(out.shape[0], -1)
        .sum(1)
        .double()
    )


MemberLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def member_loss(loss: Callable | None, task: str) -> MemberLoss:
    """``(out (M, B, C), y (M, B)) -> (M,)``: each member's mean loss.

    The default (``loss=None``) is cross-entropy / MSE by ``task``; a ``loss(outputs, targets)``
    of :func:`smithing.train.fit` is mapped over the members with ``torch.func.vmap`` (so it
    must be vmap-able: no ``.item()``, no data-dependent Python control flow).
    """
    if loss is None:
        return lambda out, y: _member_losses(out, y, task)
    return vmap(loss)


@torch.no_grad()
def evaluate_members(
    stacked: StackedModel,
    split: Split,
    task: str,
    chunk: int | None = None,
    loss: Callable | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean loss and error rate (or MSE) on ``split``: two (members,) tensors.

    ``loss``: the training loss of :func:`fit_ensemble` (default cross-entropy / MSE)."""
    M, n = stacked.n_members, len(split)
    if chunk is None:
        width = max(v.shape[-1] for v in stacked.params.values())
        chunk = max(64, int(3e7 // max(1, M * width)))
    losses = member_loss(loss, task)
    total = torch.zeros(M, dtype=torch.float64, device=split.x.device)
    err = torch.zeros(M, dtype=torch.float64, device=split.x.device)
    for i in range(0, n, chunk):
        xb, yb = split.x[i : i + chunk], split.y[i : i + chunk]
        out = stacked.forward_eval(xb)  # (M, b, C)
        yy = yb.unsqueeze(0).expand(M, *yb.shape)
        total += losses(out, yy).double() * xb.shape[0]
        err += _member_errors(out, yb, task)
    return total / n, err / n
