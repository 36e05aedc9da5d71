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

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from smithing._registry import check
from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer, Resumable
from smithing.compiled import compile_step, current_compile
from smithing.data.base import Dataset
from smithing.history import History
from smithing.precision import autocast, current_precision, set_matmul_precision
from smithing.regularize.protocol import as_regularizer, for_members, hook, parts
from smithing.train.ensemble_step import MemberStep, clip_norms
from smithing.train.stacked import (
    MemberHooks,
    MemberLoss,
    StackedModel,
    evaluate_members,
    member_loss,
)

__all__ = [
    "MemberHooks",
    "MemberLoss",
    "StackedModel",
    "evaluate_members",
    "fit_ensemble",
    "member_loss",
]


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
    check(M > 0, "models", list(models), "at least one model")
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
        device = next(models[0].parameters()).device
    device = torch.device(device)
    for model in models:
        model.to(device)
    data = data.to(device)
    task = data.task
    losses_of = member_loss(loss, task)
    stacked = StackedModel(models)
    prec = current_precision(precision)

    def forward_losses(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        with autocast(prec, device):  # bf16: forward and losses autocast, fp32 weights
            return losses_of(stacked.forward_train(xb), yb)  # (M, B, C) -> (M,)

    if current_compile(compile):
        forward_losses = compile_step(forward_losses, device)

    given = [r for r in (regularizer, hooks) if r is not None]
    reg = as_regularizer(given[0] if len(given) == 1 else given)
    reg = None if reg is None else for_members(reg, M)
    stateful = [o for o in parts(reg) if hasattr(o, "load_state_dict")]
    params = list(stacked.params.values())
    opt = _optim.make(optimizer, params, 1.0, **(optimizer_options or {}))
    base_lrs = torch.tensor(list(lrs), dtype=params[0].dtype, device=device)
    stoppers = [early_stopping() for _ in range(M)] if early_stopping is not None else None
    state_of = {**stacked.params, **stacked.buffers}  # what "best weights" are: all of it
    best = {k: v.detach().clone() for k, v in state_of.items()} if stoppers else None
    has_best = [False] * M
    active = torch.ones(M, dtype=torch.bool, device=device)
    active_l = [True] * M
    member_step = MemberStep(
        stacked,
        opt,
        forward_losses,
        linear=linear,
        clip=clip_norms(clip_norm, M, device),
        penalty=hook(reg, "penalty"),
        before_step=hook(reg, "before_step"),
        after_step=hook(reg, "after_step"),
        active=active,
        active_l=active_l,
    )
    crashed = member_step.crashed  # members frozen in this epoch by a step that raised
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
    run = _resumable(
        checkpoint, signature, device, stacked, best, gens, active, active_l, crashed, stoppers
    )
    run.optimizer(opt)

    def put_has_best(saved: list[bool]) -> None:
        has_best[:] = saved

    run.part("has_best", lambda: list(has_best), put_has_best)
    run.stateful(hists, "histories")
    run.stateful(stateful)
    run.resume()
    resume = run.position
    epoch_gens: list[torch.Tensor] = []  # the generators at the epoch's start

    restore_matmul = set_matmul_precision(prec)  # tf32: CUDA matmuls may use TF32 from here
    try:
        for epoch in run.epochs(epochs + 1):
            if not any(active_l):
                break
            factor = 1.0 if factor_at is None else float(factor_at(epoch - 1))
            cur = base_lrs * factor  # (M,) each member's learning rate in this epoch
            member_step.set_rates(cur)
            begin = 0
            if resume is not None:  # mid-epoch: redraw this epoch's orders, go on from there
                saved_gens = [g.get_state() for g in gens]
                for g, gs in zip(gens, resume["epoch_generators"]):
                    g.set_state(gs)
            if run.checkpointer is not None:
                epoch_gens = [g.get_state() for g in gens]
            perms = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
            loss_sum = torch.zeros(M, dtype=torch.float64, device=device)
            if resume is not None:
                if not all(torch.equal(g.get_state(), gs) for g, gs in zip(gens, saved_gens)):
                    raise run.error("the data-order generators do not replay to their saved states")
                loss_sum.copy_(resume["loss_sum"])
                begin, resume = resume["batch"], None

            for i in range(begin, n, batch_size):
                idx = perms[:, i : i + batch_size]  # (M, B)
                xb, yb = x[idx], y[idx]  # (M, B, ...), (M, B)
                losses = member_step.step(xb, yb, epoch=epoch, batch=i // batch_size + 1)
                if losses is None:
                    break
                loss_sum += losses.detach().double() * idx.shape[1]
                if i + batch_size < n and run.due(batches=i // batch_size + 1):
                    pos = {"epoch_generators": epoch_gens, "batch": i + batch_size}
                    run.save(epoch, pos | {"loss_sum": loss_sum})
            train_loss = (loss_sum / n).tolist()
            valid = evaluate_members(stacked, data.valid, task, loss=loss)
            v_loss, v_err = valid[0].tolist(), valid[1].tolist()
            if eval_train:
                train = evaluate_members(stacked, data.train, task, loss=loss)
                t_loss, t_err = train[0].tolist(), train[1].tolist()
            secs = run.seconds()
            recs: list[dict[str, Any]] = []
            for m in range(M):
                if m in crashed:  # frozen in this epoch by a step that raised
                    rec: dict[str, Any] = {"epoch": epoch, "train_loss": math.nan}
                    rec |= {"lr": float(cur[m]), "seconds": secs}
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
                nonfinite = [k for k in ("train_loss", "valid_loss") if not math.isfinite(rec[k])]
                if nonfinite:
                    what = nonfinite[0]
                    hists[m].status = hists[m].stop_reason = "diverged"
                    hists[
                        m
                    ].message = f"{what.replace('_', ' ')} became {rec[what]} in epoch {epoch}"
                    member_step.freeze(m, diverged=True)
                    continue
                reason = None
                if stoppers is not None:
                    improved, stop = stoppers[m].update(epoch, rec[stoppers[m].monitor])
                    if improved and stoppers[m].restore_best_weights and best is not None:
                        with torch.no_grad():
                            for k, v in state_of.items():
                                best[k][m].copy_(v[m])
                        has_best[m] = True
                    if stop:
                        reason = "patience"
                if callbacks and _run_callbacks(callbacks, epoch, rec, models[m], m, stacked):
                    reason = reason or "callback"
                if reason is not None:
                    hists[m].stop_reason = reason
                    member_step.freeze(m, diverged=False)
            if progress is not None:
                progress(epoch, recs)
            if epoch < epochs and run.due(epoch_end=True):
                run.save(epoch + 1)
        run.save_final(epochs + 1)
    finally:
        restore_matmul()
        with torch.no_grad():
            for m in range(M):
                if stoppers is not None:
                    hists[m].best_epoch = stoppers[m].best_epoch
                    if stoppers[m].restore_best_weights and has_best[m] and best is not None:
                        for k, v in state_of.items():
                            v[m].copy_(best[k][m])
        stacked.write_back(models)

    total_secs = run.seconds()
    for h in hists:
        if h.best_epoch is None and h.status == "done":  # as fit: the last epoch
            h.best_epoch = h.epochs_run
        h.seconds = total_secs
    if not final_eval:  # benchmarks timing the training loop only
        return hists
    finals = {}
    for name in ("train", "valid", "test"):
        lo, er = evaluate_members(stacked, data.split(name), task, loss=loss)
        finals[f"{name}_loss"], finals[f"{name}_error"] = lo.tolist(), er.tolist()
    for m, h in enumerate(hists):
        usable = h.status == "done" or has_best[m]
        h.final = {k: (v[m] if usable else math.nan) for k, v in finals.items()}
    return hists


def _resumable(
    checkpoint: Checkpointer | str | os.PathLike | None,
    signature: dict[str, Any],
    device: torch.device,
    stacked: StackedModel,
    best: dict[str, torch.Tensor] | None,
    gens: list[torch.Generator],
    active: torch.Tensor,
    active_l: list[bool],
    crashed: dict[int, str],
    stoppers: list[EarlyStopping] | None,
) -> Resumable:
    """The checkpoint of :func:`fit_ensemble`: the stacked tensors, the members' best weights,
    data-order generators, active flags, crash messages and early-stopping states."""
    run = Resumable(checkpoint, "fit_ensemble", signature, device=device, first_epoch=1)

    def copier(into: dict[str, torch.Tensor] | None) -> Callable[[dict], None]:
        def put(saved: dict) -> None:
            with torch.no_grad():
                for k, v in (into or {}).items():
                    if k in saved:  # (older checkpoints kept no buffers in "best")
                        v.copy_(saved[k])

        return put

    def put_active(saved: list[bool]) -> None:
        active_l[:] = saved
        active.copy_(torch.tensor(active_l, dtype=torch.bool))

    def put_generators(saved: list) -> None:
        for g, state in zip(gens, saved):
            g.set_state(state)

    def put_stoppers(saved: list | None) -> None:
        for s, state in zip(stoppers or [], saved or []):
            s.load_state_dict(state)

    run.part("params", lambda: stacked.params, copier(stacked.params))
    run.part("buffers", lambda: stacked.buffers, copier(stacked.buffers))
    run.part("generators", lambda: [g.get_state() for g in gens], put_generators)
    run.part("active", lambda: list(active_l), put_active)
    run.part("crashed", lambda: dict(crashed), crashed.update, missing={})
    run.part(
        "early_stopping",
        lambda: None if stoppers is None else [s.state_dict() for s in stoppers],
        put_stoppers,
    )
    run.part("best", lambda: best, copier(best))
    return run


def _run_callbacks(
    callbacks: Sequence[Callable[[int, dict, nn.Module], bool | None]],
    epoch: int,
    rec: dict,
    model: nn.Module,
    m: int,
    stacked: StackedModel,
) -> bool:
    """Run the callbacks on member ``m`` in its own module (``model``); keep what they made of
    its parameters and buffers; whether one asked to stop."""
    with torch.no_grad():  # the member's current state, in its own module
        model.load_state_dict(stacked.member_state(m), strict=False)
    stop = False
    for cb in callbacks:
        stop = bool(cb(epoch, rec, model)) or stop
    with torch.no_grad():  # and what the callbacks made of it
        own = model.state_dict()
        for k, v in {**stacked.params, **stacked.buffers}.items():
            v[m].copy_(own[k])
    return stop
