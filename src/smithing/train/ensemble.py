"""``fit_ensemble``: train many same-shape networks at once as one batched ensemble.

The members' parameters are stacked along a leading *members* axis
(``torch.func.stack_module_state``) and the forward pass is ``vmap`` over
``torch.func.functional_call``: one batched matmul per layer serves every member. Each member
keeps its own

* data order (the same per-seed ``randperm`` sequence :func:`smithing.train.fit` uses),
* initialization (its model is built before stacking),
* dropout masks (``vmap(..., randomness="different")``),
* learning rate and schedule, regularizer strengths (penalties, max-norm radius, masks),
* early-stopping state, best weights and divergence status.

Members never interact: the loss is the sum of the members' losses, so each member's gradient
is its own loss's gradient; a member whose loss becomes NaN/inf, or whose NaN/inf makes a step
raise, is frozen (its parameters keep their last value, with any NaN/inf entry set to 0, and it
is reported ``diverged``) while the others train on.

**Per-member learning rates with any torch.optim optimizer.** Every optimizer the project
registers changes a parameter by ``-lr * u`` where ``u`` depends on the gradients and the
optimizer state but not on ``lr`` (SGD, momentum, Nesterov, AdaGrad, RMSprop, Adam, AdaDelta,
and AdamW whose decoupled decay ``-lr * wd * p`` is also linear in ``lr``;
:func:`smithing.optim.lr_scales_update`). So the optimizer runs once over the stacked tensors at
``lr_ref = max(1, max_m lr_m)`` and each member's update is rescaled:
``p_m <- p_m_old + (lr_m / lr_ref) * (p_m_after - p_m_old)``. The factor never exceeds 1, so the
rounding error of ``p_m_after - p_m_old`` (about ``eps * |p_m_old|``) is never multiplied up:
the result equals training that member alone up to float reassociation (tested for rates from
0.05 to 10). An optimizer not linear in ``lr`` gets one rate for all members (a ``ValueError``
otherwise) and runs at it, without rescaling.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from smithing._registry import check
from smithing.callbacks import EarlyStopping
from smithing.checkpoint import (
    Checkpointer,
    CheckpointError,
    as_checkpointer,
    check_signature,
    rng_state,
    set_rng_state,
)
from smithing.compiled import compile_step, current_compile
from smithing.data.base import Dataset, Split
from smithing.history import History
from smithing.precision import autocast, current_precision, set_matmul_precision
from smithing.regularize.protocol import as_regularizer, for_members, hook, parts
from smithing.train.clipping import clip_grad_norm_per_member


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


def _clip_norms(clip_norm, M: int, device) -> float | torch.Tensor | None:
    if clip_norm is None:
        return None
    if isinstance(clip_norm, (int, float)) and not isinstance(clip_norm, bool):
        check(
            clip_norm > 0 and math.isfinite(clip_norm), "clip_norm", clip_norm, "a positive number"
        )
        return float(clip_norm)
    values = [float(v) for v in clip_norm]
    check(
        len(values) == M and all(v > 0 and math.isfinite(v) for v in values),
        "clip_norm",
        list(clip_norm),
        f"a positive number, or {M} of them (one per member)",
    )
    return torch.tensor(values, dtype=torch.float32, device=device)


def _nonfinite_members(
    params: dict[str, torch.Tensor], losses: torch.Tensor | None, M: int
) -> list[str | None]:
    """Per member: what is NaN/inf (its loss, a gradient, its parameters), or None."""
    bad_loss = torch.zeros(M, dtype=torch.bool)
    bad_grad = torch.zeros(M, dtype=torch.bool)
    bad_param = torch.zeros(M, dtype=torch.bool)
    if losses is not None:
        bad_loss |= ~torch.isfinite(losses.detach()).cpu()
    for p in params.values():
        bad_param |= ~torch.isfinite(p.detach()).reshape(M, -1).all(1).cpu()
        if p.grad is not None:
            bad_grad |= ~torch.isfinite(p.grad).reshape(M, -1).all(1).cpu()
    out: list[str | None] = []
    for m in range(M):
        if bad_loss[m]:
            out.append(f"its loss is {float(losses[m].detach())}")
        elif bad_grad[m]:
            out.append("a non-finite gradient")
        elif bad_param[m]:
            out.append("non-finite parameters")
        else:
            out.append(None)
    return out


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no message"


def fit_ensemble(
    models: Sequence[nn.Module],
    data: Dataset,
    *,
    seeds: Sequence[int],
    lrs: Sequence[float],
    epochs: int = 20,
    batch_size: int = 32,
    optimizer: str = "sgd",
    optimizer_options: dict | None = None,
    schedule: str | Callable[[int], float] | None = None,
    schedule_options: dict | None = None,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    early_stopping: Callable[[], EarlyStopping] | None = None,
    regularizer: object | None = None,
    hooks: MemberHooks | None = None,
    clip_norm: float | Sequence[float] | None = None,
    callbacks: Sequence[Callable[[int, dict, nn.Module], bool | None]] = (),
    eval_train: bool = False,
    progress: Callable[[int, list[dict]], None] | None = None,
    device: torch.device | str | None = None,
    final_eval: bool = True,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    precision: str | None = None,
    compile: bool | None = None,
) -> list[History]:
    """Train ``models`` (same architecture) as one batched ensemble; one History per member.

    Member ``m`` is trained as ``fit(models[m], data, seed=seeds[m], lr=lrs[m], ...)`` would
    train it with the same other arguments (up to float reassociation; tested): ``seeds[m]``
    seeds its data order exactly as ``fit`` does; ``lrs[m]`` is its learning rate (times the
    schedule's factor each epoch: ``schedule`` is a name or a callable ``epoch -> factor``,
    0-based, as for ``fit``); ``early_stopping`` is a factory called once per member. At
    the end each original module in ``models`` holds its member's final (or best, when
    restored) parameters and buffers (BatchNorm running statistics, ...).

    ``loss``: ``loss(outputs, targets)`` as for ``fit`` (a batch mean), applied to each member
    with ``torch.func.vmap``; default cross-entropy / MSE by ``data.task``.

    ``regularizer``: a regularizer of the protocol of :mod:`smithing.regularize.protocol`, or a
    list of them, acting on the stacked parameters (a dict ``name -> (members, ...)``) with the
    ``(members,)`` learning rates; ``for_members(len(models))`` is called first when the object
    has it, so :class:`~smithing.regularize.Penalty`, :class:`~smithing.regularize.MaxNorm` and
    :class:`~smithing.regularize.PruneMask` take one strength for all members or a
    ``(members,)`` tensor, one per member. ``hooks`` (a :class:`MemberHooks`) is the older
    name of the same thing; when both are given, ``hooks`` runs after ``regularizer``.

    ``clip_norm``: each member's global gradient norm is clipped on its own
    (:func:`~smithing.train.clipping.clip_grad_norm_per_member`); a float for all members or
    one per member.

    ``callbacks``: ``cb(epoch, record, model)`` once per training member after each epoch, with
    ``model = models[m]`` holding member ``m``'s current parameters and buffers (changes the
    callback makes to them are kept); returning True stops that member
    (``stop_reason="callback"``). A callback with state sees every member in turn.

    Divergence is per member and never raises: a member whose training or validation loss
    becomes NaN/inf, or whose numbers make a training step raise a ``RuntimeError`` /
    ``FloatingPointError`` (an optimizer or a constraint refusing NaN/inf), is frozen and
    reported ``diverged`` with a message; its non-finite parameter entries are set to 0 (so
    the penalties and constraints acting on the stacked tensors stay finite) and its final
    metrics are NaN. After a raising step the step is redone without it, from the parameters
    before the part that raised (the forward pass, the optimizer step or the regularizer's
    ``after_step``); that is exact for the others unless the optimizer raised after changing
    its state.

    ``checkpoint`` (a :class:`~smithing.checkpoint.Checkpointer` or a path) makes the run
    resumable as in :func:`~smithing.train.fit`: the checkpoint holds the stacked parameters and
    buffers, the optimizer state, every member's data-order generator, the global torch /
    Python / NumPy generators (dropout masks), the active flags, every member's early-stopping
    state and best weights, the histories, the ``state_dict()`` of each regularizer that has
    ``load_state_dict``, and the position in the epoch. A mid-epoch checkpoint stores the
    generators' states at the epoch's start (not the ``(members, n)`` permutations, which can
    be large): resuming redraws the permutations from them and checks that the generators end
    where they were saved. Resumed runs end bitwise equal on CPU.

    ``precision`` (``"fp32"``, ``"tf32"``, ``"bf16"``) and ``compile`` (the vmapped forward
    and the members' losses through ``torch.compile``) as for :func:`~smithing.train.fit`
    (:mod:`smithing.precision`, :mod:`smithing.compiled`); None: the setting in force.
    """
    M = len(models)
    check(len(seeds) == M, "seeds", list(seeds), f"{M} seeds, one per model")
    check(len(lrs) == M, "lrs", list(lrs), f"{M} learning rates, one per model")
    for lr in lrs:
        check(lr > 0 and math.isfinite(lr), "lrs", list(lrs), "positive learning rates")
    check(isinstance(epochs, int) and epochs > 0, "epochs", epochs, "a positive int")
    check(
        isinstance(batch_size, int) and batch_size > 0, "batch_size", batch_size, "a positive int"
    )
    from smithing import optim as _optim

    linear = _optim.lr_scales_update(optimizer)  # an unknown name raises here
    factor_at = _optim.resolve_schedule(schedule, epochs, schedule_options)  # name or callable
    check(
        linear or len({float(v) for v in lrs}) == 1,
        "lrs",
        list(lrs),
        f"one learning rate for all members with optimizer {optimizer!r}: its update is not "
        "linear in the learning rate (smithing.optim.lr_scales_update), so one step over the "
        "stacked members cannot give each member its own rate; group the members by learning "
        "rate or train them with fit",
    )
    if device is None:
        p = next(models[0].parameters())
        device = p.device
    device = torch.device(device)
    for m in models:
        m.to(device)
    data = data.to(device)
    task = data.task
    clip = _clip_norms(clip_norm, M, device)
    losses_of = member_loss(loss, task)
    stacked = StackedModel(models)
    prec = current_precision(precision)

    def forward_losses(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        with autocast(prec, device):  # bf16: forward and losses autocast, fp32 weights
            return losses_of(stacked.forward_train(xb), yb)  # (M, B, C) -> (M,)

    if current_compile(compile):
        forward_losses = compile_step(forward_losses, device)
    params = list(stacked.params.values())
    buffers = list(stacked.buffers.values())
    old = [torch.empty_like(p) for p in params]  # p_old buffers, reused every step

    given = [r for r in (regularizer, hooks) if r is not None]
    reg = as_regularizer(given[0] if len(given) == 1 else given)
    reg = None if reg is None else for_members(reg, M)
    penalty, before_step = hook(reg, "penalty"), hook(reg, "before_step")
    after_step = hook(reg, "after_step")
    stateful = [o for o in parts(reg) if hasattr(o, "load_state_dict")]
    # the parameters before the regularizer's before_step / after_step: a step that raises
    # there is redone from them
    pre = [torch.empty_like(p) for p in params] if before_step is not None else None
    mid = [torch.empty_like(p) for p in params] if after_step is not None else None
    old_buffers = [torch.empty_like(b) for b in buffers]

    opt = _optim.make(optimizer, params, 1.0, **(optimizer_options or {}))
    base_lrs = torch.tensor(list(lrs), dtype=params[0].dtype, device=device)
    stoppers = [early_stopping() for _ in range(M)] if early_stopping is not None else None
    state_of = {**stacked.params, **stacked.buffers}  # what "best weights" are: all of it
    best = {k: v.detach().clone() for k, v in state_of.items()} if stoppers else None
    has_best = [False] * M
    active = torch.ones(M, dtype=torch.bool, device=device)
    active_l = [True] * M
    crashed: dict[int, str] = {}  # members frozen in this epoch by a step that raised
    hists = [
        History(
            config={
                "epochs": epochs,
                "lr": float(lrs[m]),
                "batch_size": batch_size,
                "seed": int(seeds[m]),
            }
        )
        for m in range(M)
    ]
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    x, y = data.train.x, data.train.y
    n = x.shape[0]
    t0 = time.perf_counter()

    ckpt = as_checkpointer(checkpoint)
    signature = {
        "members": M,
        "seeds": [int(v) for v in seeds],
        "lrs": [float(v) for v in lrs],
        "epochs": epochs,
        "batch_size": batch_size,
        "n_train": n,
        "optimizer": optimizer,
        "optimizer_options": repr(optimizer_options or {}),
        "schedule": schedule if not callable(schedule) else getattr(schedule, "__qualname__", ""),
        "schedule_options": repr(schedule_options or {}),
        "early_stopping": early_stopping is not None,
        "parameters": [[k, list(v.shape)] for k, v in stacked.params.items()],
    }
    if stateful:
        signature["stateful"] = [type(o).__name__ for o in stateful]
    if clip_norm is not None:
        signature["clip_norm"] = repr(clip_norm)
    if prec != "fp32":
        signature["precision"] = prec
    first_epoch, resume, finished, elapsed = 1, None, False, 0.0
    epoch_gens: list[torch.Tensor] | None = None  # the generators at the epoch's start

    def snapshot(epoch: int, position: dict | None = None, done: bool = False) -> dict:
        return {
            "trainer": "fit_ensemble",
            "signature": signature,
            "epoch": epoch,
            "position": position,
            "finished": done,
            "elapsed": time.perf_counter() - t0,
            "params": stacked.params,
            "buffers": stacked.buffers,
            "optimizer": opt.state_dict(),
            "generators": [g.get_state() for g in gens],
            "rng": rng_state(device),
            "active": list(active_l),
            "crashed": dict(crashed),
            "early_stopping": None if stoppers is None else [s.state_dict() for s in stoppers],
            "best": best,
            "has_best": list(has_best),
            "histories": [h.state_dict() for h in hists],
            "stateful": [o.state_dict() for o in stateful],
        }

    state = None if ckpt is None else ckpt.load()
    if state is not None:
        check_signature(ckpt, state, "fit_ensemble", signature)
        with torch.no_grad():
            for k, v in stacked.params.items():
                v.copy_(state["params"][k])
            for k, v in stacked.buffers.items():
                v.copy_(state["buffers"][k])
            if best is not None:
                for k, v in best.items():
                    if k in state["best"]:  # (older checkpoints kept no buffers there)
                        v.copy_(state["best"][k])
        opt.load_state_dict(state["optimizer"])
        for g, gs in zip(gens, state["generators"]):
            g.set_state(gs)
        active_l[:] = state["active"]
        active.copy_(torch.tensor(active_l, dtype=torch.bool))
        crashed.update(state.get("crashed", {}))
        if stoppers is not None:
            for s, ss in zip(stoppers, state["early_stopping"]):
                s.load_state_dict(ss)
        has_best[:] = state["has_best"]
        for h, hs in zip(hists, state["histories"]):
            h.load_state_dict(hs)
        for o, os_ in zip(stateful, state.get("stateful", [])):
            o.load_state_dict(os_)
        first_epoch, resume = state["epoch"], state["position"]
        finished, elapsed = state["finished"], state["elapsed"]
        set_rng_state(state["rng"])  # last: nothing may draw from the global generators after
    t0 = time.perf_counter() - elapsed
    if ckpt is not None:
        ckpt.start()

    def views(p: torch.Tensor) -> list[int]:
        return [M, *([1] * (p.dim() - 1))]  # (M, 1, ..., 1): one value per member

    def freeze(m: int) -> None:
        """Member m trains no more; a diverged one's non-finite parameters become 0."""
        _freeze(m, active, active_l)
        if hists[m].status == "diverged" or m in crashed:
            with torch.no_grad():
                for v in stacked.params.values():
                    torch.nan_to_num_(v[m], nan=0.0, posinf=0.0, neginf=0.0)

    step_state: dict = {}  # what the steps of this epoch use

    def refresh() -> None:  # at the epoch's start and after `active` changed
        cur, ref = step_state["cur"], step_state["ref"]
        eff = torch.where(active, cur / ref, torch.zeros_like(cur))  # frozen: 0
        step_state["lr_views"] = [eff.view(views(p)) for p in params]
        step_state["active_views"] = [active.view(views(p)) for p in params]
        step_state["buffer_views"] = [active.view(views(b)) for b in buffers]
        step_state["hook_lrs"] = torch.where(active, cur, 0.0)  # (M,) for the hooks
        step_state["all_active"] = all(active_l)

    def forward_backward(idx: torch.Tensor) -> torch.Tensor:
        xb, yb = x[idx], y[idx]  # (M, B, ...), (M, B)
        all_active = step_state["all_active"]
        if not all_active and buffers:  # a frozen member's buffers stay as they are
            torch._foreach_copy_(old_buffers, buffers)
        losses = forward_losses(xb, yb)  # (M,)
        total = losses if penalty is None else losses + penalty(stacked.params)
        opt.zero_grad(set_to_none=True)
        torch.where(active, total, torch.zeros_like(total)).sum().backward()
        if not all_active and buffers:  # (after backward: BatchNorm saved them for it)
            with torch.no_grad():
                for b, ob, a in zip(buffers, old_buffers, step_state["buffer_views"]):
                    b.copy_(torch.where(a, b, ob))
        return losses

    @torch.no_grad()
    def update(stage: list[str], from_after_step: bool = False) -> None:
        all_active = step_state["all_active"]
        hook_lrs = step_state["hook_lrs"]
        if not from_after_step:
            if not all_active:  # a frozen member's gradient (maybe NaN) is not used
                for p, a in zip(params, step_state["active_views"]):
                    if p.grad is not None:
                        p.grad.masked_fill_(~a, 0.0)
            if clip is not None:  # each member's own global norm
                clip_grad_norm_per_member(stacked.params, clip, on_nonfinite="warn")
            if pre is not None:
                torch._foreach_copy_(pre, params)
                stage[0] = "pre"
                before_step(stacked.params, hook_lrs)  # e.g. decoupled decay
            torch._foreach_copy_(old, params)  # p_old
            stage[0] = "old"
            opt.step()  # at lr = lr_ref: p_after = p_old - lr_ref * u
            if linear:
                # per-member lr: p = p_old + (lr_m / lr_ref) * (p_after - p_old);
                # frozen members keep p_old exactly (their factor is 0, and where()
                # guards against non-finite u)
                torch._foreach_sub_(params, old)
                torch._foreach_mul_(params, step_state["lr_views"])
                torch._foreach_add_(params, old)
            if not all_active:
                for p, o, a in zip(params, old, step_state["active_views"]):
                    p.copy_(torch.where(a, p, o))
        if after_step is not None:
            torch._foreach_copy_(mid, params)
            stage[0] = "mid"
            after_step(stacked.params, hook_lrs)
        stage[0] = "done"

    restore_matmul = set_matmul_precision(prec)  # tf32: CUDA matmuls may use TF32 from here
    try:
        for epoch in range(first_epoch, 0 if finished else epochs + 1):
            if not any(active_l):
                break
            factor = 1.0 if factor_at is None else float(factor_at(epoch - 1))
            cur = base_lrs * factor  # (M,) each member's learning rate in this epoch
            # The optimizer runs at lr_ref and member m's update is scaled by lr_m / lr_ref:
            # lr_ref = max(1, max lr_m of the training members), so no member's update is
            # scaled up (p_after - p_old scaled by lr_m > 1 would multiply its rounding
            # error). An optimizer not linear in lr has one rate for all and runs at it.
            if linear:
                ref = max(1.0, float(torch.where(active, cur, torch.zeros_like(cur)).max()))
            else:
                ref = float(cur[0])
            for group in opt.param_groups:
                group["lr"] = ref
            step_state["cur"], step_state["ref"] = cur, ref
            refresh()
            begin = 0
            if resume is not None:  # mid-epoch: redraw this epoch's orders, go on from there
                saved_gens = [g.get_state() for g in gens]
                for g, gs in zip(gens, resume["epoch_generators"]):
                    g.set_state(gs)
            if ckpt is not None:
                epoch_gens = [g.get_state() for g in gens]
            perms = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
            loss_sum = torch.zeros(M, dtype=torch.float64, device=device)
            if resume is not None:
                if not all(torch.equal(g.get_state(), gs) for g, gs in zip(gens, saved_gens)):
                    raise CheckpointError(
                        ckpt.loaded_from or ckpt.path,
                        "the data-order generators do not replay to their saved states",
                    )
                loss_sum.copy_(resume["loss_sum"])
                begin, resume = resume["batch"], None

            for i in range(begin, n, batch_size):
                idx = perms[:, i : i + batch_size]  # (M, B)
                losses, stage = None, ["forward"]
                while True:  # once, unless a member's non-finite numbers make a part raise
                    try:
                        if stage[0] == "forward":
                            losses = forward_backward(idx)
                        update(stage, from_after_step=stage[0] == "mid")
                        break
                    except (RuntimeError, FloatingPointError) as err:
                        why = _nonfinite_members(stacked.params, losses, M)
                        bad = [m for m in range(M) if active_l[m] and why[m] is not None]
                        if not bad:
                            raise  # not an overflow of a member: a bug to see
                        with torch.no_grad():  # undo the part that raised
                            if stage[0] == "mid":
                                torch._foreach_copy_(params, mid)
                                for p, o in zip(params, old):
                                    for m in bad:
                                        p[m].copy_(o[m])
                            elif stage[0] in ("pre", "old"):
                                torch._foreach_copy_(params, pre if pre is not None else old)
                                stage[0] = "grads"
                        for m in bad:
                            crashed[m] = (
                                f"the training step raised {type(err).__name__} "
                                f"({_first_line(err)}) in epoch {epoch}, batch "
                                f"{i // batch_size + 1}: {why[m]}"
                            )
                            freeze(m)
                        refresh()
                        if not any(active_l):
                            break
                if not any(active_l):
                    break
                loss_sum += losses.detach().double() * idx.shape[1]
                if (
                    ckpt is not None
                    and i + batch_size < n
                    and ckpt.due(batches=i // batch_size + 1)
                ):
                    pos = {"epoch_generators": epoch_gens, "batch": i + batch_size}
                    ckpt.save(snapshot(epoch, pos | {"loss_sum": loss_sum}))
            train_loss = (loss_sum / n).tolist()
            v_loss, v_err = evaluate_members(stacked, data.valid, task, loss=loss)
            v_loss, v_err = v_loss.tolist(), v_err.tolist()
            if eval_train:
                t_loss, t_err = evaluate_members(stacked, data.train, task, loss=loss)
                t_loss, t_err = t_loss.tolist(), t_err.tolist()
            secs = time.perf_counter() - t0
            recs = []
            for m in range(M):
                if m in crashed:  # frozen in this epoch by a step that raised
                    rec = {"epoch": epoch, "train_loss": math.nan, "lr": float(cur[m])}
                    rec["seconds"] = secs
                    hists[m].epochs.append(rec)
                    hists[m].status = hists[m].stop_reason = "diverged"
                    hists[m].message = crashed.pop(m)
                    recs.append(rec)
                    continue
                if not active_l[m]:
                    recs.append({})
                    continue
                rec = {
                    "epoch": epoch,
                    "train_loss": train_loss[m],
                    "lr": float(cur[m]),
                    "valid_loss": v_loss[m],
                    "valid_error": v_err[m],
                    "seconds": secs,
                }
                if eval_train:
                    rec["train_eval_loss"], rec["train_error"] = t_loss[m], t_err[m]
                hists[m].epochs.append(rec)
                recs.append(rec)
                bad = [k for k in ("train_loss", "valid_loss") if not math.isfinite(rec[k])]
                if bad:
                    hists[m].status = hists[m].stop_reason = "diverged"
                    hists[
                        m
                    ].message = f"{bad[0].replace('_', ' ')} became {rec[bad[0]]} in epoch {epoch}"
                    freeze(m)
                    continue
                reason = None
                if stoppers is not None:
                    improved, stop = stoppers[m].update(epoch, rec[stoppers[m].monitor])
                    if improved and stoppers[m].restore_best_weights:
                        with torch.no_grad():
                            for k, v in state_of.items():
                                best[k][m].copy_(v[m])
                        has_best[m] = True
                    if stop:
                        reason = "patience"
                if callbacks:
                    with torch.no_grad():  # the member's current state, in its own module
                        models[m].load_state_dict(stacked.member_state(m), strict=False)
                    stop = False
                    for cb in callbacks:
                        stop = bool(cb(epoch, rec, models[m])) or stop
                    with torch.no_grad():  # and what the callbacks made of it
                        own = models[m].state_dict()
                        for k, v in state_of.items():
                            v[m].copy_(own[k])
                    if stop and reason is None:
                        reason = "callback"
                if reason is not None:
                    hists[m].stop_reason = reason
                    freeze(m)
            if progress is not None:
                progress(epoch, recs)
            if ckpt is not None and epoch < epochs and ckpt.due(epoch_end=True):
                ckpt.save(snapshot(epoch + 1))
        if ckpt is not None and ckpt.save_final and not finished:
            ckpt.save(snapshot(epochs + 1, done=True))
    finally:
        restore_matmul()
        with torch.no_grad():
            for m in range(M):
                if stoppers is not None:
                    hists[m].best_epoch = stoppers[m].best_epoch
                    if stoppers[m].restore_best_weights and has_best[m]:
                        for k, v in state_of.items():
                            v[m].copy_(best[k][m])
        stacked.write_back(models)

    total_secs = time.perf_counter() - t0
    if not final_eval:  # benchmarks timing the training loop only
        for h in hists:
            h.seconds = total_secs
        return hists
    finals = {}
    for name in ("train", "valid", "test"):
        lo, er = evaluate_members(stacked, data.split(name), task, loss=loss)
        finals[f"{name}_loss"], finals[f"{name}_error"] = lo.tolist(), er.tolist()
    for m, h in enumerate(hists):
        if h.best_epoch is None and h.status == "done":
            h.best_epoch = h.epochs_run
        h.seconds = total_secs
        usable = h.status == "done" or has_best[m]
        h.final = {k: (v[m] if usable else math.nan) for k, v in finals.items()}
    return hists


def _freeze(m: int, active: torch.Tensor, active_l: list[bool]) -> None:
    active[m] = False
    active_l[m] = False
