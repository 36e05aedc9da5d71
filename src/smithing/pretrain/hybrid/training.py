"""Trainers: :func:`train_class_rbm` and :func:`train_deep_hybrid` (their settings,
:class:`HybridTraining`), resumable through :mod:`smithing.checkpoint`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from smithing import optim as _optim
from smithing._registry import check
from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer
from smithing.history import Callback, History, legacy_callback, renamed
from smithing.pretrain.hybrid.loop import chunked, train_layers
from smithing.pretrain.hybrid.modules import ClassRBM, DeepHybridRBM
from smithing.pretrain.hybrid.settings import HybridTraining

__all__ = [
    "HybridTraining",
    "chunked",
    "train_class_rbm",
    "train_deep_hybrid",
]


_ARGS = """
    Args:
        x_unlabeled: unlabeled inputs ``(n_u, D)`` (semi-supervised, weighted ``beta``).
        valid: ``(x, y)`` for model selection and ``valid_*`` metrics.
        epochs, lr, batch_size, and every other field of :class:`HybridTraining`
            (``objective``, ``alpha``, ``beta``, ``momentum``, ``weight_decay``, ``method``,
            ``k``, ...): ``options``.
        optimizer, optimizer_options: ``"sgd"`` (the delta form, with ``momentum``; no
            options), another :mod:`smithing.optim` name with its options (one param group
            per layer, at that layer's ``lr``), or a ready ``torch.optim.Optimizer``.
        schedule, schedule_options: a :mod:`smithing.optim` schedule name or a callable
            ``epoch -> factor`` (0-based epoch) scaling the learning rates.
        early_stopping: an :class:`~smithing.callbacks.EarlyStopping` on ``valid_loss``,
            ``valid_error`` (given ``valid``) or ``train_loss``, instead of the built-in
            selection (``early_stopping_patience`` must then be None); its best epoch's
            parameters are restored at the end when ``restore_best_weights`` is set.
        generator: drives the batch order (through one seed drawn from it) and the sampling:
            same seed, same result.
        callbacks: ``cb(epoch, record, model)`` after each epoch (1-based); a truthy return
            stops training (``stop_reason="callback"``).
        progress: ``progress(epoch, record)`` after each epoch.
        device: move the model there first (the data follow the model).
        checkpoint: a :class:`~smithing.checkpoint.Checkpointer` or a path; training continues
            from the newest valid checkpoint there and saves as its policy says (epoch ends,
            optionally after any step). It holds the parameters, the optimizer state
            (momentum buffers), the persistent chains, the batch streams (their generator and
            the rest of their current permutations), the states of ``generator`` and of the
            global torch / Python / NumPy generators, the model-selection state (best epoch,
            its parameters, patience; or the ``early_stopping`` state), the history and the
            position in the epoch. A resumed run ends bitwise equal (on CPU) to the run
            uninterrupted (``seconds`` aside); a finished run's checkpoint makes a rerun skip
            training.
        lr_schedule: deprecated alias of ``schedule`` (a callable); warns.
        callback: deprecated ``callback(epoch, record)``; warns. Use ``callbacks``.

    Returns:
        a :class:`~smithing.history.History`: per epoch ``epoch`` (1-based), ``lr``,
        ``batch_loss`` (mean ``-log p(y|x)`` of the top layer over the epoch's batches,
        before each update), ``train_loss`` / ``train_error`` (exact ``-log p(y|x)`` and error
        on the first ``monitor_size`` labeled examples), ``valid_loss`` / ``valid_error`` on
        ``valid`` and cumulative ``seconds``; ``status``, ``stop_reason`` (``"max_epochs"``,
        ``"patience"``, ``"callback"``, ``"diverged"``: a non-finite parameter ends training
        with ``status="diverged"``), ``best_epoch``, ``seconds``, ``message``, and
        ``config["steps_per_epoch"]``.
"""


def _train(
    trainer: str,
    model: ClassRBM | DeepHybridRBM,
    layers: Sequence[ClassRBM],
    log_proba_fn: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    options: dict[str, Any],
    *,
    device: torch.device | str | None,
    schedule: str | Callable[[int], float] | None,
    schedule_options: dict | None,
    lr_schedule: Callable[[int], float] | None,
    callbacks: Sequence[Callback],
    callback: Callable[[int, dict], object] | None,
    extra_signature: dict | None = None,
    **loop: Any,
) -> History:
    """What both trainers do with the vocabulary they share: the options, the deprecated
    aliases (warning at the trainer's caller), the device, the schedule; then the loop."""
    cfg = HybridTraining.from_options(options)
    schedule = renamed(trainer, "lr_schedule", lr_schedule, "schedule", schedule, stacklevel=4)
    callbacks = legacy_callback(trainer, callback, callbacks, stacklevel=4)
    if device is not None:
        model.to(device)
    factor_at = _optim.resolve_schedule(schedule, cfg.epochs, schedule_options)
    return train_layers(
        model,
        layers,
        log_proba_fn,
        x,
        y,
        cfg,
        schedule=factor_at,
        callbacks=callbacks,
        trainer=trainer,
        extra_signature=extra_signature,
        **loop,
    )


def train_class_rbm(
    model: ClassRBM,
    x: Tensor,
    y: Tensor,
    *,
    x_unlabeled: Tensor | None = None,
    valid: tuple[Tensor, Tensor] | None = None,
    optimizer: str | torch.optim.Optimizer = "sgd",
    optimizer_options: dict | None = None,
    schedule: str | Callable[[int], float] | None = None,
    schedule_options: dict | None = None,
    early_stopping: EarlyStopping | None = None,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
    progress: Callable[[int, dict], None] | None = None,
    device: torch.device | str | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    callback: Callable[[int, dict], object] | None = None,
    **options,
) -> History:
    """Train a :class:`ClassRBM` in place on inputs ``x (n, D)`` and integer labels ``y (n,)``
    (plus unlabeled ``x_unlabeled (n_u, D)``: semi-supervised); ``options`` are the fields
    of :class:`HybridTraining` (objective, alpha, beta, epochs, batch_size, lr, momentum, ...).
    """
    return _train(
        "train_class_rbm", model, [model], model.log_proba, x, y, options,
        x_unlabeled=x_unlabeled, valid=valid, optimizer=optimizer,
        optimizer_options=optimizer_options, schedule=schedule, schedule_options=schedule_options,
        early_stopping=early_stopping, generator=generator, callbacks=callbacks,
        progress=progress, device=device, checkpoint=checkpoint, lr_schedule=lr_schedule,
        callback=callback,
    )  # fmt: skip


def train_deep_hybrid(
    model: DeepHybridRBM,
    x: Tensor,
    y: Tensor,
    *,
    combine: str = "top",
    x_unlabeled: Tensor | None = None,
    valid: tuple[Tensor, Tensor] | None = None,
    optimizer: str | torch.optim.Optimizer = "sgd",
    optimizer_options: dict | None = None,
    schedule: str | Callable[[int], float] | None = None,
    schedule_options: dict | None = None,
    early_stopping: EarlyStopping | None = None,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
    progress: Callable[[int, dict], None] | None = None,
    device: torch.device | str | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    callback: Callable[[int, dict], object] | None = None,
    **options,
) -> History:
    """Train every layer of a :class:`DeepHybridRBM` at once, in a single stage.

    Each step: the mini-batch goes up the stack (layer ``l``'s input is layer ``l-1``'s
    ``E[h | .]`` under the parameters *before* this step's update), every layer computes its
    own objective's gradient (:class:`HybridTraining` ``options``) on its own input with the
    true labels (no gradient crosses layers), then all layers take their step. ``lr`` may
    hold one rate per layer. The monitored metrics use ``model.log_proba(x, combine)``:
    ``combine="top"`` the top layer's ``p(y | x)``, ``"mean"`` the mean of every layer's
    (:meth:`DeepHybridRBM.log_proba`).
    """
    check(combine in ("top", "mean"), "combine", combine, "'top' or 'mean'")
    layers = list(model.layers)  # ClassRBMs (ModuleListOf[ClassRBM])
    return _train(
        "train_deep_hybrid", model, layers, lambda v: model.log_proba(v, combine), x, y, options,
        x_unlabeled=x_unlabeled, valid=valid, optimizer=optimizer,
        optimizer_options=optimizer_options, schedule=schedule, schedule_options=schedule_options,
        early_stopping=early_stopping, generator=generator, callbacks=callbacks,
        progress=progress, device=device, checkpoint=checkpoint, lr_schedule=lr_schedule,
        callback=callback, extra_signature={"combine": combine},
    )  # fmt: skip


train_class_rbm.__doc__ = (train_class_rbm.__doc__ or "") + _ARGS
train_deep_hybrid.__doc__ = (train_deep_hybrid.__doc__ or "") + _ARGS
