"""The 2-D race: every optimizer on the test surfaces, learning rates tuned per surface, and the
run kind ``surface``."""

from __future__ import annotations

import functools
import math
import time

import numpy as np
import torch

from smithing import optim
from smithing.experiment import (
    RunResult,
)

__all__ = [
    "GIF_FRAMES",
    "JITTER",
    "LR_FROM",
    "MLP_BASE",
    "MLP_LR_GRID",
    "OPTIMIZERS",
    "SEED_BLOCK",
    "STEPS",
    "SURFACE_LR_GRID",
    "SURFACE_NAMES",
    "race",
    "race_block",
    "run_surface",
    "start_point",
    "tune_lr",
]

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adadelta", "adamw")
SURFACE_NAMES = ("rosenbrock", "beale", "saddle", "quadratic")
#: half-decade grid of surface learning rates: 1e-4, 3.16e-4, ..., 10, 31.6
SURFACE_LR_GRID = tuple(float(f"{10 ** (k / 2):.6g}") for k in range(-8, 4))
#: surfaces whose learning rates are taken from another surface's grid (no minimum to tune on)
LR_FROM = {"saddle": "quadratic"}
STEPS = 300  # optimizer steps on each surface
JITTER = 0.02  # start jitter of seeds > 0, as a fraction of the window's width / height
GIF_FRAMES = 60  # frames of the animation (every STEPS / (GIF_FRAMES - 1)-th step)

#: learning-rate grids of the MLP race: six half-decade steps around each customary rate (the
#: same size for every optimizer, so each optimizer's batched ensemble has the same size)
MLP_LR_GRID = {
    "sgd": (0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
    "momentum": (0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
    "nesterov": (0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
    "adagrad": (0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
    "rmsprop": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1),
    "adam": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1),
    "adadelta": (0.1, 0.3, 1.0, 3.0, 10.0, 30.0),
    "adamw": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1),
}

MLP_BASE = {
    "quick": {"hidden": [100], "activation": "relu", "batch_size": 64, "epochs": 20},
    "paper": {"hidden": [1000, 1000], "activation": "relu", "batch_size": 128, "epochs": 50},
}


# ------------------------------------------------------------------------------ the 2-D race


def _box(s, grow: float = 0.5) -> tuple[tuple[float, float], tuple[float, float]]:
    """The plot window of surface ``s`` enlarged by ``grow`` times its size on each side."""
    w, h = s.xlim[1] - s.xlim[0], s.ylim[1] - s.ylim[0]
    return (
        (s.xlim[0] - grow * w, s.xlim[1] + grow * w),
        (s.ylim[0] - grow * h, s.ylim[1] + grow * h),
    )


def race(
    s,
    optimizer: str,
    lrs,
    steps: int,
    starts,
    options: dict | None = None,
    box=None,
) -> tuple[np.ndarray, np.ndarray, list[int | None]]:
    """Run ``optimizer`` on surface ``s``: G independent 2-D runs at once, one per row.

    The parameter is a ``(G, 2)`` float64 tensor whose row ``g`` is run ``g``'s point; the loss
    ``sum_g f(x_g)`` has gradient ``grad f(x_g)`` in row ``g``, and every optimizer of
    :mod:`smithing.optim` acts coordinate by coordinate, so the rows are independent runs
    (row ``g`` is a ``torch.optim`` run on a lone 2-vector). Each run has its own learning rate
    the way the ensemble runner gives one to each member: the optimizer steps at ``lr = 1`` and
    row ``g`` moves by ``lr_g`` times that step, ``x_new = x_old + lr_g * (x_after - x_old)``,
    which equals a run at ``lr_g`` up to rounding for every optimizer here
    (:func:`smithing.optim.lr_scales_update`). Always so, even with one rate: a run's
    trajectory is then bitwise the same whether it runs alone or in a grid (on chaotic paths,
    e.g. RMSprop on Rosenbrock at large rates, rounding differences would otherwise grow).
    A run that leaves ``box`` (default: the plot window enlarged by half its size on each side)
    or becomes non-finite is frozen where it is.

    Args:
        lrs: one learning rate, or one per run (G,).
        starts: one start ``(2,)`` for all runs or one per run ``(G, 2)``.

    Returns:
        ``paths`` (G, steps + 1, 2), ``losses`` (G, steps + 1) and, per run, the step at which
        it left the box (None if it never did).
    """
    from smithing._registry import check

    check(isinstance(steps, int) and steps >= 1, "steps", steps, "a positive int")
    lr_list = [float(v) for v in np.atleast_1d(np.asarray(lrs, dtype=float))]
    x = torch.as_tensor(np.asarray(starts, dtype=float), dtype=torch.float64).reshape(-1, 2)
    G = max(len(lr_list), x.shape[0])
    check(len(lr_list) in (1, G), "lrs", lr_list, f"one learning rate or {G}")
    check(x.shape[0] in (1, G), "starts", tuple(x.shape), f"one start (2,) or {G} starts (G, 2)")
    for v in lr_list:
        check(math.isfinite(v) and v > 0, "lrs", lr_list, "positive learning rates")
    p = x.expand(G, 2).clone().requires_grad_(True)  # (G, 2)
    opt = optim.make(optimizer, [p], 1.0, **(options or {}))
    scale = torch.tensor(lr_list, dtype=torch.float64).view(-1, 1)  # (G, 1) or (1, 1)
    (x0, x1), (y0, y1) = box or _box(s)
    paths = torch.empty(G, steps + 1, 2, dtype=torch.float64)
    losses = torch.empty(G, steps + 1, dtype=torch.float64)
    frozen = torch.zeros(G, 1, dtype=torch.bool)  # (G, 1)
    for t in range(steps + 1):
        opt.zero_grad(set_to_none=True)
        f = s(p)  # (G,)
        with torch.no_grad():
            paths[:, t] = p
            losses[:, t] = f
            q = p.detach()
            inside = torch.isfinite(q).all(1) & (q[:, 0] >= x0) & (q[:, 0] <= x1)
            inside &= (q[:, 1] >= y0) & (q[:, 1] <= y1)  # (G,)
            frozen |= ~inside.view(G, 1)
        if t == steps:
            break
        f.sum().backward()  # row g of p.grad = grad f(x_g)
        old = p.detach().clone()  # (G, 2)
        opt.step()
        with torch.no_grad():
            p.copy_(old + scale * (p - old))  # per-run lr: x_old + lr_g * (x_after - x_old)
            p.copy_(torch.where(frozen, old, p))  # frozen runs stay where they are
    outside = _outside_mask_batch(paths.numpy(), (x0, x1), (y0, y1))  # (G, steps + 1)
    left = [int(np.argmax(o)) if o.any() else None for o in outside]
    return paths.numpy(), losses.numpy(), left


def _outside_mask_batch(paths: np.ndarray, xr, yr) -> np.ndarray:
    ok = np.isfinite(paths).all(-1)
    ok &= (paths[..., 0] >= xr[0]) & (paths[..., 0] <= xr[1])
    ok &= (paths[..., 1] >= yr[0]) & (paths[..., 1] <= yr[1])
    return ~ok


def start_point(s, seed: int) -> np.ndarray:
    """Seed 0: the surface's start; seed > 0: it plus N(0, (JITTER * window size)^2) jitter per
    coordinate from a generator seeded ``seed``."""
    start = np.asarray(s.start, dtype=float)
    if seed > 0:
        gen = torch.Generator().manual_seed(int(seed))
        size = np.array([s.xlim[1] - s.xlim[0], s.ylim[1] - s.ylim[0]])
        start = start + JITTER * size * torch.randn(2, generator=gen, dtype=torch.float64).numpy()
    return start


SEED_BLOCK = 8  # seeds run together (rows of one race) and cached


@functools.lru_cache(maxsize=64)
def race_block(
    surface_name: str,
    optimizer: str,
    lrs: tuple[float, ...],
    steps: int,
    options_key: str = "{}",
    block: int = 0,
) -> tuple[np.ndarray, np.ndarray, list]:
    """Every learning rate in ``lrs`` x the seeds ``block * SEED_BLOCK ...`` (starts from
    :func:`start_point`) as the rows of ONE :func:`race`: ``paths`` (L, SEED_BLOCK, steps + 1,
    2), ``losses`` (L, SEED_BLOCK, steps + 1) and ``left`` [L][SEED_BLOCK]. Cached per process
    (it is deterministic); the rows are independent runs, so a row is bitwise the same as when
    run alone."""
    import json

    from smithing.data.surfaces import surface

    s = surface(surface_name)
    seeds = range(block * SEED_BLOCK, (block + 1) * SEED_BLOCK)
    starts = np.stack([start_point(s, sd) for sd in seeds])  # (B, 2)
    L, B = len(lrs), SEED_BLOCK
    paths, losses, left = race(
        s,
        optimizer,
        np.repeat(np.asarray(lrs, dtype=float), B),  # (L * B,): rate-major rows
        steps,
        np.tile(starts, (L, 1)),  # (L * B, 2)
        json.loads(options_key),
    )
    return (
        paths.reshape(L, B, steps + 1, 2),
        losses.reshape(L, B, steps + 1),
        [left[i * B : (i + 1) * B] for i in range(L)],
    )


def tune_lr(
    surface_name: str, optimizer: str, grid: tuple[float, ...], steps: int, options_key: str = "{}"
) -> dict:
    """The grid search of a (surface, optimizer), from the exact start (seed 0): the rate with
    the lowest final loss among runs that never left the enlarged window (ties: the smaller
    rate; if all left, the smallest rate).

    Returns ``{"lr", "finals": {str(lr): final loss, or None for a run that left}}``.
    """
    _, losses, left = race_block(surface_name, optimizer, tuple(grid), steps, options_key, 0)
    finals = [
        float(losses[g, 0, -1])
        if left[g][0] is None and math.isfinite(losses[g, 0, -1])
        else math.inf
        for g in range(len(grid))
    ]
    i = int(np.argmin(finals))  # the first minimum: the smaller rate wins ties
    return {
        "lr": grid[i],
        "finals": {str(lr): (v if math.isfinite(v) else None) for lr, v in zip(grid, finals)},
    }


def run_surface(config: dict, seed: int, device: str = "cpu") -> RunResult:
    """One (surface, optimizer) race run (the runner's ``run`` for kind ``"surface"``).

    ``config``: ``surface``, ``optimizer``, ``steps``, and either ``lr`` or ``lr_grid`` (with
    ``lr_from``, the surface to tune on, default the same); optional ``optimizer_options``.
    Other keys (``dataset``, MLP overrides) are ignored. Runs on the CPU in float64 whatever
    ``device`` is (a 2-vector gains nothing from an accelerator). The grid's rates x
    ``SEED_BLOCK`` seeds run as the rows of one :func:`race` (:func:`race_block`, cached), so
    all seeds and the grid search of a variant cost about one run.
    """
    import json

    from smithing.data.surfaces import surface

    t0 = time.perf_counter()
    s = surface(config["surface"])
    opt_name = config["optimizer"]
    optim.OPTIMIZERS.get(opt_name)  # unknown names list the valid ones
    steps = int(config.get("steps", STEPS))
    okey = json.dumps(dict(config.get("optimizer_options") or {}), sort_keys=True)
    extra: dict = {}
    block, row = divmod(int(seed), SEED_BLOCK)
    if config.get("lr") is not None:
        lr = float(config["lr"])
        lrs: tuple[float, ...] = (lr,)
    else:
        lrs = tuple(float(v) for v in config.get("lr_grid", SURFACE_LR_GRID))
        tuned_on = config.get("lr_from") or config["surface"]
        tuned = tune_lr(tuned_on, opt_name, lrs, steps, okey)
        lr = tuned["lr"]
        extra.update(lr_tuned_on=tuned_on, lr_grid_finals=tuned["finals"])
    # the whole grid x block of seeds in one race (cached): the tuning run from the exact start
    # and the drawn run of seed 0 are the same row
    paths, losses, lefts = race_block(config["surface"], opt_name, lrs, steps, okey, block)
    i = lrs.index(lr)
    paths, losses, lefts = paths[i], losses[i], lefts[i]
    path, loss = paths[row], losses[row]
    dist = math.nan
    if s.minima:
        dist = float(min(math.dist(path[-1], m) for m in s.minima))
    final = {
        "final_loss": float(loss[-1]),
        "best_loss": float(np.min(loss)),
        "distance_to_minimum": dist,
        "lr": lr,
    }
    extra.update(
        path=path.tolist(),
        loss=loss.tolist(),
        lr=lr,
        start=path[0].tolist(),
        left_window_step=lefts[row],
    )
    return RunResult("done", final=final, extra=extra, seconds=time.perf_counter() - t0)
