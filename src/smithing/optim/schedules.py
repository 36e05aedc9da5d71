"""The learning-rate schedules of :mod:`smithing.optim`: each a pure factor
``lr_t / lr_0`` (``schedule_factor``) and the ``torch.optim.lr_scheduler`` that does the same
(``make_schedule``), stepped once per epoch."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import lr_scheduler

from smithing._registry import Registry, check
from smithing.optim._checks import _is_number, _reject_unknown

__all__ = [
    "SCHEDULES",
    "Schedule",
    "describe_schedule",
    "make_schedule",
    "schedule_defaults",
    "schedule_factor",
    "schedule_names",
]


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule: ``factor(epoch, epochs, **options) = lr_t / lr_0`` (pure) and
    ``build(optimizer, epochs, **options)``, the ``torch.optim.lr_scheduler`` that does the same."""

    name: str
    factor: Callable[..., float]
    build: Callable[..., lr_scheduler.LRScheduler]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


SCHEDULES: Registry[Schedule] = Registry("schedule")

_SCHEDULE_OPTION_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "step_size": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "an integer >= 1",
    ),
    "gamma": (lambda v: _is_number(v) and v > 0, "a finite number > 0"),
    "decay": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "min_factor": (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "start_factor": (lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "warmup": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "an integer >= 1",
    ),
}


def _register_schedule(
    name: str,
    description: str,
    factor: Callable[..., float],
    build: Callable[..., lr_scheduler.LRScheduler],
    **defaults_: Any,
) -> None:
    SCHEDULES.register(
        name, Schedule(name, factor, build, defaults_, description), description=description
    )


def _cosine_factor(t: int, period: int, min_factor: float) -> float:
    # SGDR eq. 5 without restarts: eta_min + (eta_max - eta_min) * (1 + cos(pi * t / T)) / 2
    return min_factor + (1 - min_factor) * (1 + math.cos(math.pi * t / period)) / 2


def _warmup_factor(t: int, warmup: int, start_factor: float) -> float:
    # start_factor at epoch 0, rising linearly to 1 at epoch `warmup`, then 1
    return start_factor + (1 - start_factor) * min(t, warmup) / warmup


def _warmup_cosine_factor(
    t: int, epochs: int, warmup: int, start_factor: float, min_factor: float
) -> float:
    if t < warmup:
        return _warmup_factor(t, warmup, start_factor)
    return _cosine_factor(t - warmup, epochs - warmup, min_factor)


def _cosine_scheduler(
    opt: torch.optim.Optimizer, period: int, min_factor: float
) -> lr_scheduler.LRScheduler:
    # lr_0 of each group: "initial_lr" once an earlier scheduler (the warm-up) has changed "lr"
    lr0s = [g.get("initial_lr", g["lr"]) for g in opt.param_groups]
    check(
        min_factor == 0 or len(set(lr0s)) == 1,
        "min_factor",
        min_factor,
        "0 when param groups have different learning rates (CosineAnnealingLR's eta_min is one "
        "absolute value)",
    )
    eta_min = min_factor * lr0s[0]  # absolute floor, lr_min = min_factor * lr_0
    return lr_scheduler.CosineAnnealingLR(opt, T_max=period, eta_min=eta_min)


def _warmup_scheduler(
    opt: torch.optim.Optimizer, warmup: int, start_factor: float
) -> lr_scheduler.LRScheduler:
    return lr_scheduler.LinearLR(opt, start_factor=start_factor, end_factor=1.0, total_iters=warmup)


def _warmup_cosine_scheduler(
    opt: torch.optim.Optimizer, epochs: int, warmup: int, start_factor: float, min_factor: float
) -> lr_scheduler.LRScheduler:
    warm = _warmup_scheduler(opt, warmup, start_factor)
    cos = _cosine_scheduler(opt, epochs - warmup, min_factor)
    return lr_scheduler.SequentialLR(opt, [warm, cos], milestones=[warmup])


_register_schedule(
    "constant",
    "lr_t = lr_0",
    lambda t, epochs: 1.0,
    lambda opt, epochs: lr_scheduler.LambdaLR(opt, lambda t: 1.0),
)
_register_schedule(
    "step",
    "lr_t = lr_0 * gamma**(t // step_size) (StepLR)",
    lambda t, epochs, step_size, gamma: gamma ** (t // step_size),
    lambda opt, epochs, step_size, gamma: lr_scheduler.StepLR(opt, step_size, gamma),
    step_size=10,
    gamma=0.1,
)
_register_schedule(
    "exponential",
    "lr_t = lr_0 * gamma**t (ExponentialLR)",
    lambda t, epochs, gamma: gamma**t,
    lambda opt, epochs, gamma: lr_scheduler.ExponentialLR(opt, gamma),
    gamma=0.95,
)
_register_schedule(
    "inverse-time",
    "1/t decay: lr_t = lr_0 / (1 + decay * t) (LambdaLR)",
    lambda t, epochs, decay: 1 / (1 + decay * t),  # cs231n "1/t decay": lr_0 / (1 + k t)
    lambda opt, epochs, decay: lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + decay * t)),
    decay=0.1,
)
_register_schedule(
    "cosine",
    "lr_t = lr_min + (lr_0 - lr_min) * (1 + cos(pi t / epochs)) / 2, lr_min = min_factor * lr_0 "
    "(Loshchilov & Hutter, SGDR, ICLR 2017, eq. 5 without restarts; CosineAnnealingLR)",
    lambda t, epochs, min_factor: _cosine_factor(t, epochs, min_factor),
    lambda opt, epochs, min_factor: _cosine_scheduler(opt, epochs, min_factor),
    min_factor=0.0,
)
_register_schedule(
    "warmup",
    "linear warm-up: lr_t = lr_0 * (s + (1 - s) * min(t, warmup) / warmup), s = start_factor "
    "(Goyal et al., Accurate, Large Minibatch SGD, arXiv:1706.02677, 2017; LinearLR)",
    lambda t, epochs, warmup, start_factor: _warmup_factor(t, warmup, start_factor),
    lambda opt, epochs, warmup, start_factor: _warmup_scheduler(opt, warmup, start_factor),
    warmup=5,
    start_factor=0.1,
)
_register_schedule(
    "warmup-cosine",
    "linear warm-up over `warmup` epochs, then cosine from lr_0 to min_factor * lr_0 over the "
    "remaining epochs - warmup (SequentialLR of LinearLR and CosineAnnealingLR)",
    _warmup_cosine_factor,
    _warmup_cosine_scheduler,
    warmup=5,
    start_factor=0.1,
    min_factor=0.0,
)


def _schedule_options(name: str, epochs: int, options: dict[str, Any]) -> tuple[Schedule, dict]:
    sched = SCHEDULES.get(name)
    _reject_unknown("schedule", name, options, list(sched.defaults))
    check(
        isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1,
        "epochs",
        epochs,
        "an integer >= 1",
    )
    opts = {**sched.defaults, **options}
    for key, value in opts.items():
        ok, allowed = _SCHEDULE_OPTION_CHECKS[key]
        check(ok(value), key, value, allowed)
    if name == "warmup-cosine":
        check(opts["warmup"] < epochs, "warmup", opts["warmup"], f"an integer < epochs={epochs}")
    return sched, opts


def schedule_names() -> list[str]:
    """The registered schedule names."""
    return SCHEDULES.names()


def describe_schedule(name: str) -> str:
    """The formula of schedule ``name``."""
    return SCHEDULES.get(name).description


def schedule_defaults(name: str) -> dict[str, Any]:
    """The options of schedule ``name`` with their default values."""
    return dict(SCHEDULES.get(name).defaults)


def schedule_factor(name: str, epoch: int, *, epochs: int, **options: Any) -> float:
    """``lr_t / lr_0`` of schedule ``name`` at ``epoch`` (0-based) of a run of ``epochs`` epochs.

    The same numbers as ``make_schedule`` (up to rounding), without an optimizer: the ensemble
    runner multiplies each member's learning rate by it. ``min_factor`` (cosine schedules) is
    relative to ``lr_0``, so the factor does not depend on the learning rate.
    """
    sched, opts = _schedule_options(name, epochs, options)
    check(
        isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0,
        "epoch",
        epoch,
        "an integer >= 0",
    )
    return float(sched.factor(epoch, epochs, **opts))


def make_schedule(
    name: str, optimizer: torch.optim.Optimizer, *, epochs: int, **options: Any
) -> lr_scheduler.LRScheduler:
    """The ``torch.optim.lr_scheduler`` for schedule ``name``, to be stepped once per epoch.

    Building it sets each group's lr to ``lr_0 * schedule_factor(name, 0, ...)``; after ``t``
    calls of ``.step()`` the lr is ``lr_0 * schedule_factor(name, t, ...)``. Departure from
    PyTorch: the cosine floor is ``min_factor`` (relative to ``lr_0``), not the absolute
    ``eta_min``, so that it means the same for every member of an ensemble.
    """
    sched, opts = _schedule_options(name, epochs, options)
    check(
        isinstance(optimizer, torch.optim.Optimizer),
        "optimizer",
        type(optimizer).__name__,
        "a torch.optim.Optimizer",
    )
    return sched.build(optimizer, epochs, **opts)
