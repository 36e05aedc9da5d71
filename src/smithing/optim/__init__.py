"""Optimizers and learning-rate schedules by name, over ``torch.optim``.

Optimizers (``make(name, params, lr, **options)``): ``sgd``, ``momentum``, ``nesterov``,
``adagrad``, ``rmsprop``, ``adam``, ``adadelta``, ``adamw``. Nothing is reimplemented: each entry
builds the ``torch.optim`` class and validates its options. Each entry's docstring (``describe``)
gives the update rule in the lecture's symbols (cs231n: ``x`` parameters, ``dx`` mini-batch
gradient, ``lr`` learning rate), the paper, and exactly where PyTorch's formulation differs.

Schedules (``make_schedule(name, optimizer, epochs=...)``, stepped once per epoch): ``constant``,
``step``, ``exponential``, ``inverse-time``, ``cosine``, ``warmup``, ``warmup-cosine``, over
``torch.optim.lr_scheduler``; ``schedule_factor`` gives the same ``lr_t / lr_0`` as a pure
function, for the ensemble runner's per-member learning rates.

The trainers' shared vocabulary: ``resolve(optimizer, params, lr, options)`` takes a name or a
ready ``torch.optim.Optimizer``; ``resolve_schedule(schedule, epochs, options)`` a name or a
callable ``epoch -> factor`` (0-based epoch), as a factor function.

Per-member learning rates (``lr_scales_update``): for every optimizer here one step changes the
parameters by ``-lr * u(state, dx)`` and the new state does not depend on ``lr``. So an ensemble can
run one optimizer over stacked parameters at a reference rate ``lr_ref`` and give member ``m`` its
own rate by ``p_new = p_old + (lr_m * f_t / lr_ref) * (p_after - p_old)``
(``f_t = schedule_factor(...)``); this equals PyTorch run with ``lr_m * f_t`` up to rounding
(tests/test_optim.py checks it for each optimizer at ``lr_ref = 1``; ``fit_ensemble`` takes
``lr_ref = max(1, max_m lr_m * f_t)`` so that no factor exceeds 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from smithing._registry import check
from smithing.optim.optimizers import (
    _LR_LINEAR as _LR_LINEAR,  # (the ensemble tests add optimizers of their own to it)
)
from smithing.optim.optimizers import (
    OPTIMIZERS,
    defaults,
    describe,
    lr_scales_update,
    make,
    names,
)
from smithing.optim.optimizers import (
    Params as Params,
)
from smithing.optim.schedules import (
    SCHEDULES,
    Schedule,
    _schedule_options,
    describe_schedule,
    make_schedule,
    schedule_defaults,
    schedule_factor,
    schedule_names,
)

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Schedule",
    "defaults",
    "describe",
    "describe_schedule",
    "lr_scales_update",
    "make",
    "make_schedule",
    "names",
    "resolve",
    "resolve_schedule",
    "schedule_defaults",
    "schedule_factor",
    "schedule_names",
]

# ------------------------------------------------------------------- the trainers' vocabulary


def resolve(
    optimizer: str | torch.optim.Optimizer,
    params: Params,
    lr: float,
    options: dict[str, Any] | None = None,
) -> torch.optim.Optimizer:
    """The optimizer a trainer steps: ``make(optimizer, params, lr, **options)`` for a name, or
    ``optimizer`` itself when it is a ready ``torch.optim.Optimizer`` (over the model's
    parameters; ``lr`` and ``options`` are then its own, and must not be given as options)."""
    if isinstance(optimizer, torch.optim.Optimizer):
        check(
            not options,
            "optimizer_options",
            options,
            "None with a ready optimizer (its options are its own)",
        )
        return optimizer
    check(
        isinstance(optimizer, str),
        "optimizer",
        type(optimizer).__name__,
        f"a name in {names()} or a torch.optim.Optimizer",
    )
    return make(optimizer, params, lr, **(options or {}))


def resolve_schedule(
    schedule: str | Callable[[int], float] | None,
    epochs: int,
    options: dict[str, Any] | None = None,
) -> Callable[[int], float] | None:
    """A learning-rate schedule as a factor function ``epoch -> lr_t / lr_0`` (0-based epoch),
    or None for a constant rate: a name (``schedule_factor`` with ``epochs`` and ``options``;
    checked now), a callable (returned as it is), ``None`` or ``"constant"``."""
    if schedule is None or schedule == "constant":
        check(not options, "schedule_options", options, "None without a schedule")
        return None
    if callable(schedule):
        check(not options, "schedule_options", options, "None with a callable schedule")
        return schedule
    check(
        isinstance(schedule, str),
        "schedule",
        type(schedule).__name__,
        f"a name in {schedule_names()}, a callable epoch -> factor, or None",
    )
    opts = dict(options or {})
    _schedule_options(schedule, max(int(epochs), 1), opts)  # unknown names and options raise now
    return lambda epoch: schedule_factor(schedule, epoch, epochs=max(int(epochs), 1), **opts)
