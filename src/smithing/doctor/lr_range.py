"""The learning-rate range test (Smith 2017), run on a copy of the model.

Train a copy for ``steps`` steps while the learning rate grows geometrically from ``lr_min`` to
``lr_max``: ``lr_t = lr_min (lr_max / lr_min)^(t / (steps - 1))``, and record the loss,
smoothed by a debiased exponential average ``s_t = beta s_{t-1} + (1 - beta) L_t``,
``\\hat s_t = s_t / (1 - beta^(t+1))``. The test stops early when the smoothed loss passes
``diverge`` times its minimum or is not finite.

Reading the curve (Smith, "Cyclical learning rates for training neural networks", WACV 2017,
section 3.3, where the curve is accuracy against lr over a short run): the useful range starts
where the loss starts falling and ends where it stops falling. Here, with the loss:

* ``upper`` is the lr at the smoothed loss's minimum;
* ``lower`` is the first lr at which the smoothed loss has made 10 % of its total fall,
  raised to ``upper / 10`` when that is lower.

Departure from the paper: Smith reads the range from validation accuracy over a few epochs; we
read it from the training loss over a few dozen steps (what fits in a diagnosis) and say
``found=False`` when the loss falls by less than 1 % (nothing learnt: fix the initialization
or the architecture first).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from smithing import optim
from smithing._registry import check


@dataclass(frozen=True)
class LRRange:
    """The result of :func:`lr_range_test`: the curve and the range read from it."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # raw
    smoothed: list[float] = field(default_factory=list)
    lower: float | None = None
    upper: float | None = None
    found: bool = False
    diverged_at: float | None = None  # the lr at which the test stopped, if it did
    optimizer: str = "sgd"


def lr_range_test(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    lr_min: float = 1e-5,
    lr_max: float = 10.0,
    steps: int = 60,
    optimizer: str = "sgd",
    beta: float = 0.8,
    diverge: float = 4.0,
) -> LRRange:
    """Smith's learning-rate range test on a deep copy of ``model`` (``model`` is untouched).

    Args:
        model: the network (copied with ``copy.deepcopy``; trained in train mode).
        batches: ``(x, y)`` batches, cycled through.
        loss_fn: ``loss_fn(model(x), y) -> scalar``.
        lr_min, lr_max: the range swept geometrically.
        steps: the number of steps (at least 5).
        optimizer: a name of :mod:`smithing.optim` (default plain SGD).
        beta: the smoothing of the loss.
        diverge: stop when the smoothed loss exceeds this multiple of its minimum.

    Returns:
        an :class:`LRRange`.

    References:
        L. N. Smith, "Cyclical learning rates for training neural networks", WACV 2017,
        section 3.3 ("How can one estimate reasonable minimum and maximum boundary values?").
    """
    check(0 < lr_min < lr_max, "lr_min", lr_min, f"a positive number below lr_max={lr_max}")
    check(isinstance(steps, int) and steps >= 5, "steps", steps, "an int >= 5")
    check(0 <= beta < 1, "beta", beta, "a number in [0, 1)")
    check(diverge > 1, "diverge", diverge, "a number > 1")
    check(len(batches) > 0, "batches", len(batches), "at least one (x, y) batch")
    net = copy.deepcopy(model)
    net.train()
    opt = optim.make(optimizer, net.parameters(), lr=lr_min)
    lrs, raw, smooth = [], [], []
    avg, best, diverged = 0.0, math.inf, None
    for t in range(steps):
        lr = lr_min * (lr_max / lr_min) ** (t / (steps - 1))  # geometric sweep
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = batches[t % len(batches)]
        loss = loss_fn(net(x), y)
        value = float(loss.detach())
        if not math.isfinite(value):
            diverged = lr
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        avg = beta * avg + (1 - beta) * value
        s = avg / (1 - beta ** (t + 1))  # debiased exponential average
        lrs.append(lr)
        raw.append(value)
        smooth.append(s)
        best = min(best, s)
        if s > diverge * best:
            diverged = lr
            break
    if not smooth:
        return LRRange(diverged_at=diverged, optimizer=optimizer)
    i_min = min(range(len(smooth)), key=smooth.__getitem__)
    drop = smooth[0] - smooth[i_min]
    found = drop > 0.01 * abs(smooth[0]) and i_min > 0
    lower = upper = None
    if found:
        upper = lrs[i_min]
        i_low = next(i for i in range(i_min + 1) if smooth[0] - smooth[i] >= 0.1 * drop)
        lower = max(lrs[i_low], upper / 10)
    return LRRange(lrs, raw, smooth, lower, upper, found, diverged, optimizer)


__all__ = ["LRRange", "lr_range_test"]
