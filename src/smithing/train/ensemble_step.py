"""One training step of the batched ensemble (:func:`~smithing.train.ensemble.fit_ensemble`):
per-member learning rates, frozen members, and the redo of a step that raised.

The optimizer runs once over the stacked tensors at ``lr_ref`` and member ``m``'s update is
rescaled, ``p_m <- p_m_old + (lr_m / lr_ref) * (p_m_after - p_m_old)`` (see
:mod:`smithing.train.ensemble`); a frozen member keeps its parameters and buffers exactly. A
step that raises on a member's NaN/inf is undone from the copies taken before the part that
raised (the forward pass, the optimizer step, the regularizer's ``after_step``), the members at
fault are frozen, and the step is redone for the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from smithing._registry import check
from smithing.train.clipping import clip_grad_norm_per_member
from smithing.train.loop import step_raised
from smithing.train.stacked import StackedModel

__all__ = ["MemberStep"]

StackedHook = Callable[[dict[str, torch.Tensor], torch.Tensor], None]


def clip_norms(
    clip_norm: float | Sequence[float] | None, M: int, device: torch.device
) -> float | torch.Tensor | None:
    """``clip_norm`` of :func:`fit_ensemble`: None, one positive number, or ``(M,)`` of them."""
    if clip_norm is None:
        return None
    if isinstance(clip_norm, (int, float)):
        ok = not isinstance(clip_norm, bool) and clip_norm > 0 and math.isfinite(clip_norm)
        check(ok, "clip_norm", clip_norm, "a positive number")
        return float(clip_norm)
    values = [float(v) for v in clip_norm]
    check(
        len(values) == M and all(v > 0 and math.isfinite(v) for v in values),
        "clip_norm",
        list(clip_norm),
        f"a positive number, or {M} of them (one per member)",
    )
    return torch.tensor(values, dtype=torch.float64, device=device)  # (cast to the norms')


def nonfinite_members(
    params: dict[str, torch.Tensor], losses: torch.Tensor | None, M: int
) -> list[str | None]:
    """Per member: what is NaN/inf (its loss, a gradient, its parameters), or None."""
    bad_loss = torch.zeros(M, dtype=torch.bool)
    bad_grad = torch.zeros(M, dtype=torch.bool)
    bad_param = torch.zeros(M, dtype=torch.bool)
    loss_values: list[float] = [0.0] * M
    if losses is not None:
        bad_loss |= ~torch.isfinite(losses.detach()).cpu()
        loss_values = [float(v) for v in losses.detach()]
    for p in params.values():
        bad_param |= ~torch.isfinite(p.detach()).reshape(M, -1).all(1).cpu()
        if p.grad is not None:
            bad_grad |= ~torch.isfinite(p.grad).reshape(M, -1).all(1).cpu()
    out: list[str | None] = []
    for m in range(M):
        if bad_loss[m]:
            out.append(f"its loss is {loss_values[m]}")
        elif bad_grad[m]:
            out.append("a non-finite gradient")
        elif bad_param[m]:
            out.append("non-finite parameters")
        else:
            out.append(None)
    return out


class MemberStep:
    """The step of :func:`fit_ensemble` over ``stacked``: forward, backward, clip, regularize,
    step at ``lr_ref`` and rescale each member's update; frozen members (``active[m]`` False)
    keep their parameters and buffers.

    ``active`` (a ``(M,)`` bool tensor on the device) and ``active_l`` (the same as a list)
    are the trainer's, changed through :meth:`freeze`; call :meth:`set_rates` at each epoch's
    start.
    """

    def __init__(
        self,
        stacked: StackedModel,
        opt: torch.optim.Optimizer,
        forward_losses: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        *,
        linear: bool,
        clip: float | torch.Tensor | None,
        penalty: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None,
        before_step: StackedHook | None,
        after_step: StackedHook | None,
        active: torch.Tensor,
        active_l: list[bool],
    ) -> None:
        self.stacked, self.opt, self.forward_losses = stacked, opt, forward_losses
        self.linear, self.clip = linear, clip
        self.penalty, self.before_step, self.after_step = penalty, before_step, after_step
        self.active, self.active_l = active, active_l
        self.M = stacked.n_members
        self.params = list(stacked.params.values())
        self.buffers = list(stacked.buffers.values())
        self.old = [torch.empty_like(p) for p in self.params]  # p_old, reused every step
        # the parameters before the regularizer's before_step / after_step: a step that raises
        # there is redone from them
        self.pre = [torch.empty_like(p) for p in self.params] if before_step is not None else None
        self.mid = [torch.empty_like(p) for p in self.params] if after_step is not None else None
        self.old_buffers = [torch.empty_like(b) for b in self.buffers]
        self.cur = torch.ones(self.M)
        self.ref = 1.0
        self.crashed: dict[int, str] = {}  # members frozen by a step that raised: why

    def _views(self, p: torch.Tensor) -> list[int]:
        return [self.M, *([1] * (p.dim() - 1))]  # (M, 1, ..., 1): one value per member

    def set_rates(self, cur: torch.Tensor) -> None:
        """This epoch's ``(M,)`` learning rates: the optimizer runs at ``lr_ref`` and member
        ``m``'s update is scaled by ``lr_m / lr_ref``.

        ``lr_ref = max(1, max lr_m of the training members)``, so no member's update is scaled
        up (``p_after - p_old`` scaled by ``lr_m > 1`` would multiply its rounding error). An
        optimizer not linear in lr has one rate for all and runs at it.
        """
        if self.linear:
            ref = max(1.0, float(torch.where(self.active, cur, torch.zeros_like(cur)).max()))
        else:
            ref = float(cur[0])
        for group in self.opt.param_groups:
            group["lr"] = ref
        self.cur, self.ref = cur, ref
        self.refresh()

    def refresh(self) -> None:
        """Recompute the per-member factors and masks (after ``active`` changed)."""
        active, cur = self.active, self.cur
        eff = torch.where(active, cur / self.ref, torch.zeros_like(cur))  # frozen: 0
        self.lr_views = [eff.view(self._views(p)) for p in self.params]
        self.active_views = [active.view(self._views(p)) for p in self.params]
        self.buffer_views = [active.view(self._views(b)) for b in self.buffers]
        self.hook_lrs = torch.where(active, cur, 0.0)  # (M,) for the hooks
        self.all_active = all(self.active_l)

    def freeze(self, m: int, *, diverged: bool) -> None:
        """Member ``m`` trains no more; a diverged one's non-finite parameters become 0 (so the
        penalties and constraints acting on the stacked tensors stay finite)."""
        self.active[m] = False
        self.active_l[m] = False
        if diverged:
            with torch.no_grad():
                for v in self.stacked.params.values():
                    torch.nan_to_num_(v[m], nan=0.0, posinf=0.0, neginf=0.0)

    def forward_backward(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """The members' losses ``(M,)`` on ``xb (M, B, ...)``, ``yb (M, B)``; gradients set."""
        if not self.all_active and self.buffers:  # a frozen member's buffers stay as they are
            torch._foreach_copy_(self.old_buffers, self.buffers)
        losses = self.forward_losses(xb, yb)  # (M,)
        total = losses if self.penalty is None else losses + self.penalty(self.stacked.params)
        self.opt.zero_grad(set_to_none=True)
        torch.where(self.active, total, torch.zeros_like(total)).sum().backward()
        if not self.all_active and self.buffers:  # (after backward: BatchNorm saved them for it)
            with torch.no_grad():
                for b, ob, a in zip(self.buffers, self.old_buffers, self.buffer_views):
                    b.copy_(torch.where(a, b, ob))
        return losses

    @torch.no_grad()
    def update(self, stage: list[str], from_after_step: bool = False) -> None:
        """Clip, ``before_step``, the optimizer step rescaled per member, ``after_step``;
        ``stage[0]`` names the copy the parameters can be restored from if a part raises."""
        params, old = self.params, self.old
        if not from_after_step:
            if not self.all_active:  # a frozen member's gradient (maybe NaN) is not used
                for p, a in zip(params, self.active_views):
                    if p.grad is not None:
                        p.grad.masked_fill_(~a, 0.0)
            if self.clip is not None:  # each member's own global norm
                clip_grad_norm_per_member(self.stacked.params, self.clip, on_nonfinite="warn")
            if self.pre is not None and self.before_step is not None:
                torch._foreach_copy_(self.pre, params)
                stage[0] = "pre"
                self.before_step(self.stacked.params, self.hook_lrs)  # e.g. decoupled decay
            torch._foreach_copy_(old, params)  # p_old
            stage[0] = "old"
            self.opt.step()  # at lr = lr_ref: p_after = p_old - lr_ref * u
            if self.linear:
                # per-member lr: p = p_old + (lr_m / lr_ref) * (p_after - p_old);
                # frozen members keep p_old exactly (their factor is 0, and where()
                # guards against non-finite u)
                torch._foreach_sub_(params, old)
                torch._foreach_mul_(params, self.lr_views)
                torch._foreach_add_(params, old)
            if not self.all_active:
                for p, o, a in zip(params, old, self.active_views):
                    p.copy_(torch.where(a, p, o))
        if self.mid is not None and self.after_step is not None:
            torch._foreach_copy_(self.mid, params)
            stage[0] = "mid"
            self.after_step(self.stacked.params, self.hook_lrs)
        stage[0] = "done"

    def step(
        self, xb: torch.Tensor, yb: torch.Tensor, *, epoch: int, batch: int
    ) -> torch.Tensor | None:
        """One step of the training members; the losses ``(M,)``, or None when every member
        is frozen. A ``RuntimeError`` / ``FloatingPointError`` with some training member's
        numbers non-finite undoes the part that raised, freezes each such member (why, with
        ``epoch`` and ``batch``, in :attr:`crashed`) and redoes the step without them; with
        every number finite it propagates (a bug to see)."""
        losses, stage = None, ["forward"]
        while True:  # once, unless a member's non-finite numbers make a part raise
            try:
                if stage[0] == "forward":
                    losses = self.forward_backward(xb, yb)
                self.update(stage, from_after_step=stage[0] == "mid")
                return losses
            except (RuntimeError, FloatingPointError) as err:
                why = nonfinite_members(self.stacked.params, losses, self.M)
                bad = [m for m in range(self.M) if self.active_l[m] and why[m] is not None]
                if not bad:
                    raise  # not an overflow of a member: a bug to see
                self._undo(stage, bad)
                for m in bad:
                    self.crashed[m] = step_raised(err, epoch, batch, str(why[m]))
                    self.freeze(m, diverged=True)
                self.refresh()
                if not any(self.active_l):
                    return None

    @torch.no_grad()
    def _undo(self, stage: list[str], bad: list[int]) -> None:
        """Undo the part of the step that raised (``stage[0]`` says which)."""
        params, old = self.params, self.old
        if stage[0] == "mid" and self.mid is not None:
            torch._foreach_copy_(params, self.mid)
            for p, o in zip(params, old):
                for m in bad:
                    p[m].copy_(o[m])
        elif stage[0] in ("pre", "old"):
            torch._foreach_copy_(params, self.pre if self.pre is not None else old)
            stage[0] = "grads"
