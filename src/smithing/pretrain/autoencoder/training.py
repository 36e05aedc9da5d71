"""The trainer :func:`train_autoencoder` (resumable through :mod:`smithing.checkpoint`)."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from smithing import optim as _optim
from smithing._registry import check
from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer, Resumable
from smithing.history import Callback, History, legacy_callback, run_callbacks
from smithing.pretrain._batches import MemberBatches
from smithing.pretrain.autoencoder.functional import (
    CORRUPTIONS,
    _check_rate,
    corrupt_with_mask,
)
from smithing.pretrain.autoencoder.modules import (
    DenoisingAutoencoder,
)

__all__ = [
    "train_autoencoder",
]

# ------------------------------------------------------------------ training


def _to_py(t: Tensor) -> float | list[float]:
    return t.detach().cpu().tolist()


@torch.no_grad()
def _clean_loss(model: DenoisingAutoencoder, x: Tensor, chunk: int = 4096) -> Tensor:
    """Mean reconstruction loss of clean inputs ``x (*M?, n, d)``, in chunks, ``(*M,)``."""
    n = x.shape[-2]
    total: Tensor | float = 0.0
    for i in range(0, n, chunk):
        xb = x[..., i : i + chunk, :]
        total = total + model.loss(xb) * xb.shape[-2]
    if not isinstance(total, Tensor):  # no chunk: n == 0
        raise ValueError(f"x.shape={tuple(x.shape)} is invalid: expected at least one example")
    return total / n


def train_autoencoder(
    model: DenoisingAutoencoder,
    data: Tensor,
    *,
    epochs: int = 15,
    lr: float = 0.1,
    batch_size: int = 20,
    optimizer: str | torch.optim.Optimizer = "sgd",
    optimizer_options: dict | None = None,
    schedule: str | Callable[[int], float] | None = None,
    schedule_options: dict | None = None,
    corruption: str = "masking",
    rate: float = 0.0,
    emphasis: tuple[float, float] | None = None,
    contractive: float = 0.0,
    valid_data: Tensor | None = None,
    monitor_size: int | None = None,
    early_stopping: EarlyStopping | None = None,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
    progress: Callable[[int, dict], None] | None = None,
    device: torch.device | str | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    callback: Callable[[int, dict], object] | None = None,
) -> History:
    """Train ``model`` in place by mini-batch gradient descent; return its
    :class:`~smithing.history.History`.

    Each step draws a batch ``x`` (an independent order per member for an ensemble), corrupts
    it, ``x~ ~ q(x~ | x)`` (``corruption``, ``rate``: :func:`corrupt_with_mask`), and takes one
    step of ``optimizer`` on ``L(x, g(f(x~)))`` (+ ``contractive * ||J_f(x)||_F^2``), with the
    per-component losses weighted ``alpha`` / ``beta`` on corrupted / other components when
    ``emphasis=(alpha, beta)``. Members' losses are summed, so each member gets its own
    gradient.

    Args:
        model: a :class:`DenoisingAutoencoder` (trained in place).
        data: ``(n, n_visible)`` (shared by all members) or ``(M, n, n_visible)``, on the
            model's device.
        epochs: the number of passes over ``data``.
        lr: the learning rate.
        batch_size: examples per mini-batch; the last, smaller batch of an epoch is kept.
        optimizer: a :mod:`smithing.optim` name (``"sgd"`` by default; e.g. ``"momentum"``) or
            a ready ``torch.optim.Optimizer`` over ``model.parameters()``.
        optimizer_options: the named optimizer's options (e.g. ``{"momentum": 0.9}``).
        schedule: a :mod:`smithing.optim` schedule name or a callable ``epoch -> factor``
            (0-based epoch): the optimizer's learning rate in epoch ``t`` is its initial one
            times ``factor(t)``.
        schedule_options: the named schedule's options.
        corruption: the corruption's name (:func:`corrupt_with_mask`; above).
        rate: the corruption rate (above).
        emphasis: ``(alpha, beta)``, the weights on corrupted / other components, or ``None``.
        contractive: the contractive penalty's strength (above).
        valid_data: held-out inputs for the monitoring (below).
        monitor_size: examples of each set the monitoring uses (below).
        early_stopping: an :class:`~smithing.callbacks.EarlyStopping` watching
            ``recon_loss_valid`` (needs ``valid_data``) or ``recon_loss``; one model only
            (``members=None``). Its best weights are restored at the end when
            ``restore_best_weights`` is set (``stop_reason="patience"`` when it stopped).
        generator: drives the batch order and the corruption: same seed, same result.
        callbacks: ``cb(epoch, record, model)`` after each epoch (1-based epoch); a truthy
            return stops training (``stop_reason="callback"``).
        progress: ``progress(epoch, record)`` after each epoch.
        device: move ``model``, ``data`` and ``valid_data`` there first (default: stay).
        checkpoint: a :class:`~smithing.checkpoint.Checkpointer` or a path; training continues
            from the newest valid checkpoint there and saves as its policy says (epoch ends,
            optionally mid-epoch). It holds the parameters, the optimizer state, the states of
            ``generator`` and of the global torch / Python / NumPy generators (the corruption
            draws from them without a generator), the early-stopping state and best weights,
            the history, the epoch and the position in it (the permutation, the next batch,
            the loss sum). A resumed run ends bitwise equal (on CPU) to the run uninterrupted,
            wall times aside; a finished run's checkpoint makes a rerun skip training.
        callback: deprecated: ``callback(epoch, record)`` with a 0-based ``epoch``, as
            before; warns. Use ``callbacks``.

    Returns:
        a :class:`~smithing.history.History`, one record per epoch (floats, or lists of ``M``
        floats for an ensemble): ``epoch`` (1-based), ``lr``, ``loss`` (mean training
        objective over the epoch's batches, corrupted inputs), ``recon_loss``
        (reconstruction loss of the *clean* training inputs, the first ``monitor_size`` of
        them, after the epoch), ``recon_loss_valid`` when ``valid_data`` is given and
        ``seconds`` (cumulative). ``stop_reason``: ``"max_epochs"``, ``"patience"``,
        ``"callback"``, or ``"diverged"`` (``status="diverged"``) when a single model's
        training objective becomes non-finite.
    """
    callbacks = legacy_callback("train_autoencoder", callback, callbacks, offset=1)
    check(isinstance(epochs, int) and epochs >= 0, "epochs", epochs, "an int >= 0")
    check(
        isinstance(batch_size, int) and batch_size > 0, "batch_size", batch_size, "a positive int"
    )
    check(contractive >= 0, "contractive", contractive, "a non-negative number")
    check(
        monitor_size is None
        or (
            isinstance(monitor_size, int)
            and not isinstance(monitor_size, bool)
            and monitor_size > 0
        ),
        "monitor_size",
        monitor_size,
        "None or a positive int",
    )
    CORRUPTIONS.get(corruption)
    _check_rate(corruption, rate)
    if emphasis is not None:
        check(
            len(emphasis) == 2 and all(w >= 0 for w in emphasis),
            "emphasis",
            emphasis,
            "None or (alpha, beta), two non-negative weights",
        )
    factor_at = _optim.resolve_schedule(schedule, epochs, schedule_options)
    if device is not None:
        model.to(device)
        data = data.to(device)
        valid_data = None if valid_data is None else valid_data.to(device)
    M = model.members
    batches = MemberBatches(data, model.n_visible, M)
    dev, dtype = model.W.device, model.W.dtype
    check(data.device == dev, "data.device", data.device, f"the model's device {dev}")
    data = data.to(dtype)
    n = data.shape[-2]
    opt = _optim.resolve(optimizer, list(model.parameters()), lr, optimizer_options)
    base_lrs = [group["lr"] for group in opt.param_groups]
    mon_train = data if monitor_size is None else data[..., :monitor_size, :]
    mon_valid = None
    if valid_data is not None:
        mon_valid = valid_data.to(device=dev, dtype=dtype)
        if monitor_size is not None:
            mon_valid = mon_valid[..., :monitor_size, :]
    if early_stopping is not None:
        check(M is None, "early_stopping", early_stopping, "None for an ensemble (members=M)")
        watched = ("recon_loss",) if mon_valid is None else ("recon_loss_valid", "recon_loss")
        check(early_stopping.monitor in watched, "early_stopping.monitor",
              early_stopping.monitor, f"one of {watched} (what this run records)")  # fmt: skip
        early_stopping.reset()
    best_state: dict | None = None
    hist = History(config={"epochs": epochs, "lr": lr, "batch_size": batch_size})
    gen_dev = generator.device if generator is not None else torch.device("cpu")
    signature = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "optimizer_options": repr(optimizer_options or {}),
        "corruption": [corruption, rate],
        "emphasis": None if emphasis is None else list(emphasis),
        "contractive": contractive,
        "data": list(data.shape),
        "parameters": [[k, list(v.shape)] for k, v in model.state_dict().items()],
        "generator": generator is not None,
        "early_stopping": None if early_stopping is None else early_stopping.monitor,
    }
    if not isinstance(optimizer, str):
        signature["optimizer"] = type(optimizer).__name__
    run = Resumable(checkpoint, "train_autoencoder", signature, device=dev)
    run.module("model", model)
    run.optimizer(opt)
    run.generator(generator)
    run.early_stopping(early_stopping)
    run.part("best_state", lambda: best_state)
    run.history(hist)
    state = run.resume()
    if state is not None and state["best_state"] is not None:
        best_state = {k: v.to(dev) for k, v in state["best_state"].items()}
    resume = run.position
    for epoch in run.epochs(epochs):  # 0-based here; records 1-based
        if factor_at is not None:
            factor = float(factor_at(epoch))
            for group, base in zip(opt.param_groups, base_lrs):
                group["lr"] = base * factor
        if resume is not None:  # a mid-epoch checkpoint: the same order, from the next batch
            perm, loss_sum = resume["perm"].to(dev), resume["loss_sum"].to(dev)
            n_batches, begin, resume = resume["n_batches"], resume["batch"], None
        else:
            perm = batches.order(generator, gen_dev).to(dev)  # (*M, n)
            loss_sum = torch.zeros(() if M is None else (M,), dtype=dtype, device=dev)
            n_batches, begin = 0, 0
        for start in range(begin, n, batch_size):
            idx = perm[..., start : start + batch_size]  # (*M, B)
            xb = batches.take(data, idx)  # (*M, B, d)
            x_tilde, mask = corrupt_with_mask(xb, corruption, rate, generator)
            weights = None
            if emphasis is not None:
                alpha, beta = emphasis
                weights = torch.where(mask, alpha, beta).to(dtype)  # (*M, B, d)
            losses = model.loss(xb, x_tilde, weights=weights, contractive=contractive)  # (*M,)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # members independent: each gets its own gradient
            opt.step()
            loss_sum += losses.detach()
            n_batches += 1
            if start + batch_size < n and run.due(batches=n_batches):
                pos = {"perm": perm, "batch": start + batch_size, "loss_sum": loss_sum}
                run.save(epoch, pos | {"n_batches": n_batches})
        record = {
            "epoch": epoch + 1,
            "lr": opt.param_groups[0]["lr"],
            "loss": _to_py(loss_sum / max(n_batches, 1)),
            "recon_loss": _to_py(_clean_loss(model, mon_train)),
        }
        if mon_valid is not None:
            record["recon_loss_valid"] = _to_py(_clean_loss(model, mon_valid))
        record["seconds"] = run.seconds()
        hist.epochs.append(record)
        if M is None and not torch.isfinite(loss_sum).all():
            hist.status = hist.stop_reason = "diverged"
            hist.message = f"training loss became {record['loss']} in epoch {epoch + 1}"
            break
        if progress is not None:
            progress(epoch + 1, record)
        patience_stop = False
        if early_stopping is not None:
            improved, patience_stop = early_stopping.update(
                epoch + 1, record[early_stopping.monitor]
            )
            if improved and early_stopping.restore_best_weights:
                best_state = copy.deepcopy(model.state_dict())
        callback_stop = run_callbacks(callbacks, epoch + 1, record, model)
        if patience_stop or callback_stop:
            hist.stop_reason = "patience" if patience_stop else "callback"
            break
        if epoch + 1 < epochs and run.due(epoch_end=True):
            run.save(epoch + 1)
    run.save_final(epochs)
    opt.zero_grad(set_to_none=True)
    hist.best_epoch = hist.epochs_run if hist.status == "done" else None
    if early_stopping is not None:
        hist.best_epoch = early_stopping.best_epoch
        if early_stopping.restore_best_weights and best_state is not None:
            with torch.no_grad():
                model.load_state_dict(best_state)
    hist.seconds = run.seconds()
    return hist
