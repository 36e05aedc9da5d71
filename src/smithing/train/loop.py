"""``fit``: train one model on a dataset's splits with device-resident mini-batches.

The hot loop never touches a DataLoader: the whole split lives on the training device and a
mini-batch is ``x[perm[i:i + batch_size]]``. The data order of epoch ``t`` is the ``t``-th
``torch.randperm`` of a CPU generator seeded with ``seed``, so a run is reproducible (bitwise on
CPU) and the batched-ensemble trainer can reproduce it member by member.
"""

from __future__ import annotations

import copy
import math
import os
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from smithing._registry import check
from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer, Resumable
from smithing.compiled import compile_step, current_compile
from smithing.data.base import Dataset, Split
from smithing.history import History
from smithing.precision import autocast, current_precision, set_matmul_precision
from smithing.regularize.protocol import as_regularizer, hook, parts, stateful_objects

__all__ = [
    "Loss",
    "seed_everything",
    "default_loss",
    "batch_error",
    "evaluate",
    "fit",
    "nonfinite_state",
    "step_raised",
    "final_metrics",
]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch's global generators (model init, dropout masks)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_loss(task: str) -> Loss:
    """Cross-entropy on logits for classification, mean squared error for regression."""
    if task == "classification":
        return F.cross_entropy
    return _mse


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out.reshape(y.shape), y)


def batch_error(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Summed error of a batch: misclassifications, or squared error for regression."""
    if task == "classification":
        return (out.argmax(-1) != y).sum()
    return ((out.reshape(y.shape) - y) ** 2).sum()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: Split,
    task: str = "classification",
    loss_fn: Loss | None = None,
    batch_size: int = 4096,
) -> tuple[float, float]:
    """Mean loss and error rate (classification) or MSE (regression) of ``model`` on ``split``."""
    loss_fn = loss_fn or default_loss(task)
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=split.x.device)
    total_err = torch.zeros((), dtype=torch.float64, device=split.x.device)
    n = len(split)
    for i in range(0, n, batch_size):
        xb, yb = split.x[i : i + batch_size], split.y[i : i + batch_size]
        out = model(xb)
        total_loss += loss_fn(out, yb).double() * xb.shape[0]
        total_err += batch_error(out, yb, task).double()
    model.train(was_training)
    return (total_loss / n).item(), (total_err / n).item()


def fit(
    model: nn.Module,
    data: Dataset,
    *,
    epochs: int = 20,
    lr: float = 0.1,
    batch_size: int = 32,
    optimizer: str | torch.optim.Optimizer = "sgd",
    optimizer_options: dict | None = None,
    schedule: str | Callable[[int], float] | None = None,
    schedule_options: dict | None = None,
    loss: Loss | None = None,
    seed: int = 0,
    early_stopping: EarlyStopping | None = None,
    regularizer: object | None = None,
    clip_norm: float | None = None,
    callbacks: Sequence[Callable[[int, dict, nn.Module], bool | None]] = (),
    eval_train: bool = False,
    progress: Callable[[int, dict], None] | None = None,
    device: torch.device | str | None = None,
    final_eval: bool = True,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    precision: str | None = None,
    compile: bool | None = None,
    shuffle: bool = True,
) -> History:
    """Train ``model`` on ``data.train``, validating on ``data.valid`` every epoch.

    Args:
        model: any ``nn.Module`` mapping a batch of inputs to outputs (logits).
        data: a :class:`~smithing.data.Dataset`; moved to ``device`` (default: the model's).
        epochs: the number of passes over ``data.train``.
        lr: the learning rate.
        batch_size: examples per mini-batch; the last, smaller batch of an epoch is kept.
        optimizer: a name from ``smithing.optim`` (``sgd``, ``momentum``, ``nesterov``,
            ``adagrad``, ``rmsprop``, ``adam``, ...) with ``optimizer_options``, or a ready
            optimizer over ``model.parameters()``.
        schedule: a learning-rate schedule name from ``smithing.optim`` (with
            ``schedule_options``) stepped every epoch, or a callable ``epoch -> factor``
            (0-based epoch; ``lr * factor``, a ``LambdaLR``).
        loss: ``loss(outputs, targets)``; default cross-entropy / MSE by ``data.task``.
        seed: seeds the data order (model init and dropout use the global generator; see
            :func:`seed_everything`).
        early_stopping: an :class:`EarlyStopping`; its best weights are restored at the end
            whatever ended training when ``restore_best_weights`` is set.
        regularizer: a regularizer of the protocol of :mod:`smithing.regularize.protocol`
            (``penalty(model)`` added to the loss, ``before_step(model, lr)`` before and
            ``after_step(model, lr)`` after each optimizer step, each optional), or a list of
            them: :class:`~smithing.regularize.Penalty` (L2, L1, elastic net, decoupled weight
            decay, proximal L1), :class:`~smithing.regularize.MaxNorm`,
            :class:`~smithing.regularize.PruneMask`, an RNN's constraints, your own.
        clip_norm: clip the global gradient norm to this value (non-finite gradients are
            reported, see :mod:`smithing.train.clipping`).
        callbacks: ``cb(epoch, record, model)`` after each epoch (after early stopping);
            returning True stops training (``stop_reason="callback"``; ``"patience"`` is early
            stopping's).
        eval_train: also measure train loss/error in eval mode every epoch (one extra pass).
        progress: ``progress(epoch, record)`` after each epoch (the CLI's progress bar).
        final_eval: measure train/valid/test metrics at the end into ``History.final`` (one
            extra pass over every split; benchmarks timing the training loop turn it off).
        checkpoint: a :class:`~smithing.checkpoint.Checkpointer` or a path (default
            policy). The run resumes from the newest valid checkpoint there (a fresh ``model``
            of the same architecture is fine) and saves as the policy says: at epoch ends and,
            if asked, mid-epoch. It holds the parameters and buffers, optimizer and schedule
            state, the data-order generator, the global torch / Python / NumPy generators
            (dropout), the early-stopping state and best weights, the History so far, the
            ``state_dict()`` of each regularizer (of a list too) or callback that has
            ``load_state_dict``, and the position in the epoch (its permutation, the next
            batch, the running loss sum).
            A resumed run ends with the same parameters and metrics, bitwise on CPU, as the
            run uninterrupted (wall times aside). None (the default): no checkpoints.
        precision: ``"fp32"``, ``"tf32"`` or ``"bf16"`` (:mod:`smithing.precision`: bf16
            autocasts the forward pass and the loss, the weights stay fp32); None: the
            precision in force (``use_precision``; fp32 by default).
        compile: compile the forward pass and loss with ``torch.compile`` (CUDA graphs on
            CUDA; :mod:`smithing.compiled`); None: the switch in force (off by default).
        shuffle: a new random order every epoch (the default); False: every epoch visits the
            training examples in their stored order, as the Theano tutorials' loops do
            (batch ``i`` is ``x[i * batch_size:(i + 1) * batch_size]``).

    Returns:
        a :class:`History`. A loss that becomes NaN/inf, or a training step that raises a
        ``RuntimeError`` / ``FloatingPointError`` while the loss, a gradient or a parameter is
        NaN/inf (an optimizer or a constraint refusing non-finite numbers, an SVD of an
        overflowed weight), ends the run with ``status="diverged"`` and a message; it never
        raises for that. (An error with every number finite is a bug and propagates.)
    """
    check(isinstance(epochs, int) and epochs > 0, "epochs", epochs, "a positive int")
    check(
        isinstance(batch_size, int) and batch_size > 0, "batch_size", batch_size, "a positive int"
    )
    check(
        isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr), "lr", lr, "a positive number"
    )
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    device = torch.device(device)
    model.to(device)
    data = data.to(device)
    loss_fn = loss or default_loss(data.task)
    prec = current_precision(precision)

    def forward_loss(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        with autocast(prec, device):  # bf16: forward and loss autocast, fp32 weights
            return loss_fn(model(xb), yb)

    step_loss = compile_step(forward_loss, device) if current_compile(compile) else forward_loss
    opt = _make_optimizer(optimizer, model, lr, optimizer_options)
    sched: torch.optim.lr_scheduler.LRScheduler | None = None
    if callable(schedule):
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    elif schedule is not None and schedule != "constant":
        from smithing import optim as _optim

        sched = _optim.make_schedule(schedule, opt, epochs=epochs, **(schedule_options or {}))
    if early_stopping is not None:
        watched = ("valid_loss", "valid_error", "train_loss")
        check(early_stopping.monitor in watched, "early_stopping.monitor",
              early_stopping.monitor, f"one of {watched} (what fit records)")  # fmt: skip
        early_stopping.reset()
    reg = as_regularizer(regularizer)
    penalty, before_step = hook(reg, "penalty"), hook(reg, "before_step")
    after_step = hook(reg, "after_step")

    x, y = data.train.x, data.train.y
    n = x.shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    hist = History(config={"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed})
    best_state: dict | None = None
    signature = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": int(seed),
        "n_train": n,
        "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
        "optimizer_options": repr(optimizer_options or {}),
        "schedule": schedule if not callable(schedule) else getattr(schedule, "__qualname__", ""),
        "schedule_options": repr(schedule_options or {}),
        "parameters": [[k, list(v.shape)] for k, v in model.state_dict().items()],
    }
    stateful = stateful_objects((*parts(reg), *callbacks))
    signature["stateful"] = [type(o).__name__ for o in stateful]
    if prec != "fp32":
        signature["precision"] = prec
    if not shuffle:
        signature["shuffle"] = False
    run = Resumable(checkpoint, "fit", signature, device=device, first_epoch=1)
    run.module("model", model)
    run.optimizer(opt)

    def put_schedule(saved: Any) -> None:
        if sched is not None:
            sched.load_state_dict(saved)

    run.part("schedule", lambda: None if sched is None else sched.state_dict(), put_schedule)
    run.generator(gen)
    run.early_stopping(early_stopping)
    run.part("best_state", lambda: best_state)
    run.history(hist)
    run.stateful(stateful)
    state = run.resume()
    if state is not None and state["best_state"] is not None:
        best_state = {k: v.to(device) for k, v in state["best_state"].items()}
    resume = run.position
    restore_matmul = set_matmul_precision(prec)  # tf32: CUDA matmuls may use TF32 from here
    try:
        for epoch in run.epochs(epochs + 1):
            model.train()
            if resume is None:
                perm = (torch.randperm(n, generator=gen) if shuffle else torch.arange(n)).to(device)
                loss_sum = torch.zeros((), device=device, dtype=torch.float64)
                cur_lr, begin = opt.param_groups[0]["lr"], 0
            else:  # a mid-epoch checkpoint: the same order, from the next batch on
                perm, loss_sum = resume["perm"].to(device), resume["loss_sum"].to(device)
                cur_lr, begin, resume = resume["lr"], resume["batch"], None
            crash = None  # a step that raised on non-finite numbers: the run diverged
            for i in range(begin, n, batch_size):
                idx = perm[i : i + batch_size]
                xb, yb = x[idx], y[idx]
                batch_loss = None
                try:
                    batch_loss = step_loss(xb, yb)
                    total = batch_loss if penalty is None else batch_loss + penalty(model)
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                    if clip_norm is not None:
                        _clip(model, clip_norm)
                    step_lr = opt.param_groups[0]["lr"]
                    if before_step is not None:
                        with torch.no_grad():
                            before_step(model, step_lr)
                    opt.step()
                    if after_step is not None:
                        with torch.no_grad():
                            after_step(model, step_lr)
                except (RuntimeError, FloatingPointError) as err:
                    why = nonfinite_state(model, batch_loss)
                    if why is None:
                        raise  # not an overflow: a bug to see, not a divergence to report
                    crash = step_raised(err, epoch, i // batch_size + 1, why)
                    break
                loss_sum += batch_loss.detach().double() * xb.shape[0]
                if i + batch_size < n and run.due(batches=i // batch_size + 1):
                    pos = {"perm": perm, "batch": i + batch_size, "loss_sum": loss_sum}
                    run.save(epoch, pos | {"lr": cur_lr})
            train_loss = math.nan if crash is not None else (loss_sum / n).item()
            rec = {"epoch": epoch, "train_loss": train_loss, "lr": cur_lr}
            if not math.isfinite(train_loss):
                hist.status, hist.stop_reason = "diverged", "diverged"
                hist.message = crash or f"training loss became {train_loss} in epoch {epoch}"
                rec["seconds"] = run.seconds()
                hist.epochs.append(rec)
                break
            rec["valid_loss"], rec["valid_error"] = evaluate(model, data.valid, data.task, loss_fn)
            if eval_train:
                rec["train_eval_loss"], rec["train_error"] = evaluate(
                    model, data.train, data.task, loss_fn
                )
            rec["seconds"] = run.seconds()
            hist.epochs.append(rec)
            if progress is not None:
                progress(epoch, rec)
            if not math.isfinite(rec["valid_loss"]):
                hist.status, hist.stop_reason = "diverged", "diverged"
                hist.message = f"validation loss became {rec['valid_loss']} in epoch {epoch}"
                break
            patience_stop = callback_stop = False
            if early_stopping is not None:
                improved, patience_stop = early_stopping.update(epoch, rec[early_stopping.monitor])
                if improved and early_stopping.restore_best_weights:
                    best_state = copy.deepcopy(model.state_dict())
            for cb in callbacks:
                callback_stop = bool(cb(epoch, rec, model)) or callback_stop
            if patience_stop or callback_stop:
                hist.stop_reason = "patience" if patience_stop else "callback"
                break
            if sched is not None:
                sched.step()
            if epoch < epochs and run.due(epoch_end=True):
                run.save(epoch + 1)
        run.save_final(epochs + 1)
    finally:
        restore_matmul()
        # ALWAYS restore the best weights, whatever ended training (even an exception)
        if early_stopping is not None:
            hist.best_epoch = early_stopping.best_epoch
            if early_stopping.restore_best_weights and best_state is not None:
                model.load_state_dict(best_state)
    if hist.best_epoch is None and hist.status == "done":
        hist.best_epoch = hist.epochs_run
    hist.seconds = run.seconds()
    if not final_eval:
        return hist
    hist.final = final_metrics(
        model, data, loss_fn, usable=hist.status == "done" or best_state is not None
    )
    return hist


def nonfinite_state(model: nn.Module, loss: torch.Tensor | None = None) -> str | None:
    """What is NaN/inf in a training step (the loss, gradients, parameters), or None."""
    if loss is not None and not bool(torch.isfinite(loss.detach()).all()):
        return f"the loss is {float(loss.detach().reshape(-1)[0])}"
    named = list(model.named_parameters())
    grads = [n for n, p in named if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
    if grads:
        return f"non-finite gradient in {', '.join(grads)}"
    params = [n for n, p in named if not bool(torch.isfinite(p.detach()).all())]
    if params:
        return f"non-finite parameters in {', '.join(params)}"
    return None


def step_raised(err: BaseException, epoch: int, batch: int, why: str) -> str:
    """The message of a training step that raised on non-finite numbers (``why``: what was
    non-finite), for ``fit`` and each member of ``fit_ensemble``."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else "no message"
    where = f"in epoch {epoch}, batch {batch}"
    return f"the training step raised {type(err).__name__} ({first}) {where}: {why}"


def final_metrics(model: nn.Module, data: Dataset, loss_fn: Loss, usable: bool = True) -> dict:
    """Train/valid/test loss and error of the weights the model holds now."""
    if not usable:
        return {
            k: math.nan
            for k in (
                "train_loss",
                "train_error",
                "valid_loss",
                "valid_error",
                "test_loss",
                "test_error",
            )
        }
    out = {}
    for name in ("train", "valid", "test"):
        out[f"{name}_loss"], out[f"{name}_error"] = evaluate(
            model, data.split(name), data.task, loss_fn
        )
    return out


def _make_optimizer(optimizer, model: nn.Module, lr: float, options: dict | None):
    from smithing import optim as _optim

    return _optim.resolve(optimizer, model.parameters(), lr, options)


def _clip(model: nn.Module, max_norm: float) -> None:
    try:
        from smithing.train.clipping import clip_grad_norm
    except ImportError:  # pragma: no cover - the clipping module is optional at import time
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        return
    clip_grad_norm(model, max_norm, on_nonfinite="warn")
