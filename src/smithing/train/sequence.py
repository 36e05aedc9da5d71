"""``fit_sequence``: a step-based trainer for sequence models, evaluated every few steps.

Where :func:`smithing.train.fit` counts epochs and evaluates once per epoch, recurrent
experiments count optimizer *steps* (Le, Jaitly & Hinton 2015 report the adding problem against
training steps) and evaluate every ``eval_every`` steps. The loop is otherwise the same kind:
the splits live on the training device, a mini-batch is ``x[perm[pos:pos + batch_size]]`` of a
``torch.randperm`` drawn from a CPU generator seeded with ``seed`` (a fresh permutation whenever
the current one cannot fill a whole batch: every batch is full, the tail of a pass is dropped),
so a run is reproducible (bitwise on CPU).

One step::

    L = loss(model(x_b), y_b)                    # MSE or cross-entropy by data.task
    (L + regularizer.penalty(model)).backward()
    g <- g * min(1, c / (||g|| + 1e-6))          # clip_norm = c (Pascanu et al. 2013, Alg. 1)
    regularizer.before_step(model, lr)           # e.g. decoupled weight decay
    optimizer.step()
    regularizer.after_step(model, lr)            # e.g. an RNN constraint (projected GD)

Gradient-norm clipping is :func:`smithing.train.clipping.clip_grad_norm` with
``on_nonfinite="skip"``: a step whose gradient is not finite is skipped. For the recurrent models
of :mod:`smithing.nn.rnn`, ``regularizer=RecurrentRegularizer()`` adds their penalties to the
loss and enforces their constraints after every step.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from smithing._registry import check
from smithing.checkpoint import Checkpointer, Resumable
from smithing.data.base import Dataset, Split
from smithing.history import History
from smithing.regularize.protocol import as_regularizer, hook, parts, stateful_objects
from smithing.train.clipping import clip_grad_norm

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _default_loss(task: str) -> Loss:
    return F.cross_entropy if task == "classification" else F.mse_loss


@torch.no_grad()
def evaluate_split(
    model: nn.Module,
    split: Split,
    task: str,
    loss: Loss | None = None,
    batch_size: int = 1000,
) -> dict[str, float]:
    """Mean loss over a split, and the error rate (classification) or MSE (regression).

    ``loss=None``: the task's loss summed per batch (``F.cross_entropy`` / ``F.mse_loss`` with
    ``reduction="sum"``) and divided by the split's size; a custom ``loss`` (a batch mean) is
    weighted by the batch size. Batches of ``batch_size`` examples bound the memory; the sums
    are Python floats. Returns ``{"loss", "error"}`` (classification) or ``{"loss", "mse"}``.
    The model runs in eval mode; its mode is restored.
    """
    was_training = model.training
    model.eval()
    total, wrong, sq, n = 0.0, 0, 0.0, len(split)
    try:
        for i in range(0, n, batch_size):
            out = model(split.x[i : i + batch_size])
            yb = split.y[i : i + batch_size]
            if task == "classification":
                if loss is None:
                    total += float(F.cross_entropy(out, yb, reduction="sum"))
                else:
                    total += float(loss(out, yb)) * len(yb)
                wrong += int((out.argmax(-1) != yb).sum())
            else:
                se = float(F.mse_loss(out, yb, reduction="sum"))  # sum_i (out_i - y_i)^2
                sq += se
                total += se if loss is None else float(loss(out, yb)) * len(yb)
    finally:
        model.train(was_training)
    res = {"loss": total / max(n, 1)}
    if task == "classification":
        res["error"] = wrong / max(n, 1)
    else:
        res["mse"] = sq / max(n, 1)
    return res


def fit_sequence(
    model: nn.Module,
    data: Dataset,
    *,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 50,
    optimizer: str | torch.optim.Optimizer = "rmsprop",
    optimizer_options: dict | None = None,
    schedule: str | Callable[[int], float] | None = None,
    schedule_options: dict | None = None,
    loss: Loss | None = None,
    seed: int = 0,
    regularizer: object | None = None,
    clip_norm: float | None = 1.0,
    eval_every: int = 50,
    eval_batch_size: int = 1000,
    callbacks: Sequence[Callable[[int, dict, nn.Module], bool | None]] = (),
    progress: Callable[[int, dict], None] | None = None,
    device: torch.device | str | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
) -> History:
    """Train ``model`` on ``data.train`` for ``steps`` optimizer steps, evaluating every
    ``eval_every`` steps.

    Args:
        model: any module mapping a batch of inputs (e.g. sequences ``(batch, T, n_in)``) to
            predictions ``(batch,)`` (regression) or logits ``(batch, classes)``.
        data: a :class:`~smithing.data.Dataset`; moved to ``device`` (default: the model's).
            ``data.task`` picks the loss and the metrics.
        steps: the number of optimizer steps (``0``: only the evaluation at step 0).
        lr: the learning rate.
        batch_size: the mini-batch size (every batch is full; a ``batch_size`` above the
            training set's size gives batches of the whole set).
        optimizer: a name from :mod:`smithing.optim` (``rmsprop``, ``sgd``, ``adam``, ...) with
            ``optimizer_options``, or a ready optimizer over ``model.parameters()`` (then ``lr``
            and ``optimizer_options`` are not used).
        schedule: a learning-rate schedule over the *steps*: a :mod:`smithing.optim` schedule
            name (its ``epochs`` is ``steps``: ``"cosine"`` decays ``lr`` to
            ``min_factor * lr`` at the last step) or a callable ``t -> factor`` with the 0-based
            step index ``t``; step ``t + 1`` uses ``lr_0 * factor(t)``. None: a constant rate.
            Each record holds its step's ``lr``.
        schedule_options: the named schedule's options.
        loss: ``loss(outputs, targets)`` (a batch mean); default ``F.mse_loss`` (regression) or
            ``F.cross_entropy`` (classification).
        seed: seeds the CPU generator of the data order (the model's initialization is the
            caller's).
        regularizer: a regularizer of the protocol of :mod:`smithing.regularize.protocol`
            (``penalty(model)``, ``before_step(model, lr)``, ``after_step(model, lr)``) or a
            list of them, as for :func:`smithing.train.fit`;
            :class:`smithing.nn.rnn.RecurrentRegularizer` for RNN penalties and constraints.
        clip_norm: clip the global gradient norm to this value (None: no clipping; the norm is
            still recorded). A non-finite gradient skips the step.
        eval_every: evaluate after every ``eval_every``-th step (and after step 0 and the last).
        eval_batch_size: examples per forward pass in the evaluation.
        callbacks: ``cb(step, record, model)`` after each evaluation of a training step;
            returning True stops training (``stop_reason="callback"``).
        progress: ``progress(step, record)`` after each evaluation record.
        device: the training device (default: the model's).
        checkpoint: a :class:`~smithing.checkpoint.Checkpointer` or a path (default
            policy). The run resumes from the newest valid checkpoint there (a fresh ``model``
            of the same architecture is fine) and saves as the policy says: after an
            evaluation record (the steps' "epoch end") and, if asked, between them
            (``every_batches`` counts steps). It holds the parameters and buffers, the
            optimizer state, the data-order generator, the global torch / Python / NumPy
            generators (dropout), the next step, the current permutation and the position in
            it, the running window of the next record, the History so far and the
            ``state_dict()`` of a ``regularizer`` or callback that has ``load_state_dict``. A
            resumed run ends with the same parameters and records, bitwise on CPU, as the run
            uninterrupted (``seconds`` aside); a finished run's checkpoint makes a rerun skip
            training. None (the default): no checkpoints.

    Returns:
        a :class:`~smithing.train.History` whose ``epochs`` are the *evaluation records*, not
        epochs: the first at step 0 (before training), then one after every ``eval_every``-th
        step and the last. Each has ``step`` (the number of optimizer steps taken, 1-based
        counting), ``train_loss`` (mean mini-batch loss since the previous record, without the
        penalty), ``grad_norm`` (mean gradient norm before clipping; non-finite ones count 0),
        ``clipped`` (fraction of those steps that were clipped), and per non-empty
        validation/test split ``valid_loss``/``test_loss`` plus ``valid_error``/``test_error``
        (classification) or ``valid_mse``/``test_mse`` (regression). The step-0 record has
        only ``step`` and the split metrics. ``status`` is ``"done"`` or ``"diverged"`` (the
        mini-batch loss became non-finite: a last record is taken at that step and training
        stops, nothing raises); ``stop_reason`` is ``"max_steps"``, ``"callback"`` or
        ``"diverged"``; ``final`` is the last record without ``step`` (the model is not
        evaluated again); ``best_epoch`` is None (no early stopping).
    """
    check(isinstance(steps, int) and steps >= 0, "steps", steps, "a non-negative int")
    check(isinstance(eval_every, int) and eval_every > 0, "eval_every", eval_every, "an int > 0")
    check(
        isinstance(batch_size, int) and batch_size > 0, "batch_size", batch_size, "a positive int"
    )
    check(
        isinstance(eval_batch_size, int) and eval_batch_size > 0,
        "eval_batch_size",
        eval_batch_size,
        "a positive int",
    )
    check(
        isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr), "lr", lr, "a positive number"
    )
    check(clip_norm is None or clip_norm > 0, "clip_norm", clip_norm, "None or a positive number")
    from smithing import optim as _optim

    factor_at = _optim.resolve_schedule(schedule, steps, schedule_options)
    n = len(data.train)
    check(n > 0, "data", data.name, "a dataset with training examples")
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    device = torch.device(device)
    model.to(device)
    data = data.to(device)
    task = data.task
    loss_fn = loss or _default_loss(task)
    if isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
    else:
        opt = _optim.make(optimizer, model.parameters(), lr, **(optimizer_options or {}))
    base_lrs = [group["lr"] for group in opt.param_groups]
    reg = as_regularizer(regularizer)
    penalty, before_step = hook(reg, "penalty"), hook(reg, "before_step")
    after_step = hook(reg, "after_step")
    xs, ys = data.train.x, data.train.y
    hist = History(
        stop_reason="max_steps",
        config={
            "steps": steps,
            "lr": lr,
            "batch_size": batch_size,
            "seed": seed,
            "eval_every": eval_every,
        },
    )
    # the loop's whole state: model, opt, step, gen, perm, pos, window, hist
    gen = torch.Generator().manual_seed(int(seed))
    perm, pos = torch.randperm(n, generator=gen), 0
    window = {"loss": 0.0, "norm": 0.0, "clipped": 0, "steps": 0}
    stateful = stateful_objects((*parts(reg), *callbacks))
    signature = {
        "steps": steps,
        "lr": lr,
        "batch_size": batch_size,
        "seed": int(seed),
        "n_train": n,
        "eval_every": eval_every,
        "clip_norm": clip_norm,
        "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
        "optimizer_options": repr(optimizer_options or {}),
        "parameters": [[k, list(v.shape)] for k, v in model.state_dict().items()],
        "stateful": [type(o).__name__ for o in stateful],
    }
    if schedule is not None:  # kept out of the signature of a constant rate (older checkpoints)
        signature["schedule"] = schedule if isinstance(schedule, str) else "callable"
        signature["schedule_options"] = repr(schedule_options or {})
    # the checkpoint: "step" is the next step, "pos" the position in the permutation "perm"
    run = Resumable(
        checkpoint,
        "fit_sequence",
        signature,
        device=device,
        first_epoch=1,
        epoch_key="step",
        position_key="pos",
    )
    run.module("model", model)
    run.optimizer(opt)
    run.generator(gen)
    run.part("perm", lambda: perm)  # read back from the state below
    run.part("window", lambda: dict(window), window.update)
    run.history(hist)
    run.stateful(stateful)
    state = run.resume()
    if state is not None:
        perm, pos = state["perm"], run.position

    def record(step: int) -> dict:
        w = max(window["steps"], 1)
        rec: dict = {"step": step}
        if window["steps"]:
            rec.update(
                train_loss=window["loss"] / w,
                grad_norm=window["norm"] / w,
                clipped=window["clipped"] / w,
            )
            if factor_at is not None:
                rec["lr"] = opt.param_groups[0]["lr"]
        for name in ("valid", "test"):
            split = data.split(name)
            if len(split) == 0:
                continue
            ev = evaluate_split(model, split, task, loss, eval_batch_size)
            rec[f"{name}_loss"] = ev["loss"]
            if task == "classification":
                rec[f"{name}_error"] = ev["error"]
            else:
                rec[f"{name}_mse"] = ev["mse"]
        hist.epochs.append(rec)
        window.update(loss=0.0, norm=0.0, clipped=0, steps=0)
        if progress is not None:
            progress(step, rec)
        return rec

    if state is None:
        record(0)
    model.train()
    for step in run.epochs(steps + 1):
        if pos + batch_size > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos : pos + batch_size].to(xs.device)
        pos += batch_size
        if factor_at is not None:
            factor = float(factor_at(step - 1))
            for group, base in zip(opt.param_groups, base_lrs):
                group["lr"] = base * factor
        out = model(xs[idx])
        batch_loss = loss_fn(out, ys[idx])
        loss_f = float(batch_loss.detach())
        if not math.isfinite(loss_f):
            record(step)
            hist.status, hist.stop_reason = "diverged", "diverged"
            hist.message = f"non-finite training loss at step {step}"
            break
        opt.zero_grad(set_to_none=True)
        total = batch_loss if penalty is None else batch_loss + penalty(model)
        total.backward()
        if clip_norm is not None:
            rep = clip_grad_norm(model, clip_norm, on_nonfinite="skip")
            norm, clipped = float(rep.total_norm), bool(rep.clipped)  # a float: one norm
        else:
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            norm = float(torch.nn.utils.get_total_norm(grads))
            clipped = False
        step_lr = opt.param_groups[0]["lr"]
        if before_step is not None:
            with torch.no_grad():
                before_step(model, step_lr)
        opt.step()
        if after_step is not None:
            with torch.no_grad():
                after_step(model, step_lr)
        window["loss"] += loss_f
        window["norm"] += norm if math.isfinite(norm) else 0.0
        window["clipped"] += int(clipped)
        window["steps"] += 1
        evaluated = step % eval_every == 0 or step == steps
        if evaluated:
            rec = record(step)
            stop = False
            for cb in callbacks:
                stop = bool(cb(step, rec, model)) or stop
            if stop:
                hist.stop_reason = "callback"
                break
        if step < steps and run.due(epoch_end=evaluated, batches=step):
            run.save(step + 1, pos)
    run.save_final(steps + 1, pos)
    hist.seconds = run.seconds()
    hist.final = {k: v for k, v in hist.epochs[-1].items() if k != "step"}
    return hist


__all__ = ["evaluate_split", "fit_sequence"]
