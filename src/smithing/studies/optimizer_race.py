"""Study ``optimizer-race``: every optimizer of :mod:`smithing.optim` on 2-D surfaces and on an MLP.

**(a) The race on surfaces** (variants ``<surface>/<optimizer>``, kind ``"surface"``): each
optimizer (``sgd``, ``momentum``, ``nesterov``, ``adagrad``, ``rmsprop``, ``adam``, ``adadelta``,
``adamw``, all with their :mod:`smithing.optim` defaults, e.g. momentum 0.9 and AdamW's weight
decay 0.01) runs ``torch.optim`` on one 2-vector parameter (float64) for ``STEPS`` steps from
the surface's start point, on Rosenbrock's valley, Beale's function, the saddle ``x^2 - y^2`` and
an ill-conditioned quadratic (condition number 50), all from :mod:`smithing.data.surfaces`.

*Learning rates.* For each (surface, optimizer) the learning rate is chosen by a grid, at run
time: the half-decade grid ``SURFACE_LR_GRID`` (1e-4 to ~31.6) is run from the exact start and
the rate with the lowest final loss wins, among runs that stayed inside the plot window
enlarged by half its size on each side (a run that leaves it is frozen there and disqualified;
ties go to the smaller rate). The grid's rates and the seeds run at once as the independent
rows of one parameter (see :func:`race`); seed 0's drawn run is the grid's own run at the chosen
rate (bitwise). The criterion favours the largest rate that still converges, so the chosen
rates sit near the edge of stability and their paths bounce before they settle: that is what a
tuned rate looks like on these surfaces. The saddle has no minimum, so "lowest final
loss" would just pick the largest step; there each optimizer uses the rate it was given on the
quadratic (``LR_FROM``), where the steep direction (curvature 50) limits the step, as steep
directions do in a network's loss; the saddle then asks how fast each optimizer leaves a flat,
negatively curved direction at that rate. The table lists every chosen rate.

*Seeds.* Seed 0 starts exactly at the surface's start point and is what the figures draw; seed
``s > 0`` adds Gaussian jitter of ``JITTER`` times the window's width and height to the start
(generator seeded ``s``) with the same learning rate; the table reports the median final loss
over all seeds beside seed 0's, and how many runs left the window.

*Figures.* Trajectories over log-spaced contours, loss per step (log y), and ``race.gif``, the
animation (:func:`smithing.plots.animation.race_gif`, ``GIF_FRAMES`` frames, ~0.2 MB).

Expected (the lecture's point, cs231n "Neural Networks 3"): momentum and Nesterov overshoot
and oscillate across narrow valleys but move fast along them; per-coordinate adaptive methods
(AdaGrad, RMSprop, Adam) are not slowed down by ill-conditioning when the valley is aligned with
the axes, and escape the saddle quickly because they rescale the tiny gradient along ``y``.

**(b) The race on a real task** (variants ``mlp/<optimizer>/lr=<lr>``, kind ``"mlp"``): an MLP
with ReLU units (quick: digits, 64-100-10, batch 64, 20 epochs; paper: MNIST, 784-1000-1000-10,
batch 128, 50 epochs, the multilayer network of Kingma & Ba 2015, section 6.2, trained here
without dropout) for each optimizer and each learning rate of a half-decade grid of six values
around the optimizer's customary rate (``MLP_LR_GRID``), several seeds. The figures and the
table use, per optimizer, the rate with the lowest mean final *validation* error (ties: lower
validation loss); the test error is reported only for that rate. The grid x seeds of one
optimizer train as one batched ensemble, so the per-epoch wall time of an optimizer is that of
its whole ensemble (the same size for every optimizer).
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np
import torch

from smithing import optim
from smithing.experiment import (
    Figure,
    RunResult,
    Study,
    Table,
    Variant,
    mean_std_ci,
    register,
)

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


# ------------------------------------------------------------------------------ variants


def variants(scale: str) -> list[Variant]:
    out = []
    for sname in SURFACE_NAMES:
        for o in OPTIMIZERS:
            cfg = {
                "surface": sname,
                "optimizer": o,
                "steps": STEPS,
                "lr_grid": list(SURFACE_LR_GRID),
                "lr_from": LR_FROM.get(sname, sname),
            }
            out.append(Variant(f"{sname}/{o}", cfg, kind="surface"))
    base = MLP_BASE[scale]
    for o in OPTIMIZERS:
        for lr in MLP_LR_GRID[o]:
            out.append(Variant(mlp_name(o, lr), {**base, "optimizer": o, "lr": lr}))
    return out


def mlp_name(optimizer: str, lr: float) -> str:
    return f"mlp/{optimizer}/lr={lr:g}"


# ------------------------------------------------------------------------------ results


def _surface_runs(results) -> dict[tuple[str, str], list]:
    out: dict[tuple[str, str], list] = {}
    for r in results.runs:
        if "surface" in r.config and r.status == "done":
            out.setdefault((r.config["surface"], r.config["optimizer"]), []).append(r)
    return out


def _mlp_runs(results) -> dict[str, dict[float, list]]:
    """optimizer -> lr -> runs (done or diverged), in the results' order."""
    out: dict[str, dict[float, list]] = {}
    for r in results.runs:
        if "surface" not in r.config and "hidden" in r.config:
            out.setdefault(r.config["optimizer"], {}).setdefault(float(r.config["lr"]), []).append(
                r
            )
    return out


def _mean_final(runs, key: str) -> float:
    vals = [float(r.final.get(key, math.nan)) for r in runs if r.status == "done"]
    vals = [v for v in vals if math.isfinite(v)]
    if len(vals) < len(runs) or not vals:
        return math.inf  # a diverged seed disqualifies the rate
    return sum(vals) / len(vals)


def chosen_lrs(results) -> dict[str, float]:
    """Per optimizer: the grid rate with the lowest mean final validation error over seeds
    (ties: lower mean validation loss; a rate with a diverged seed is never chosen unless all
    are)."""
    out = {}
    for o, by_lr in _mlp_runs(results).items():
        lrs = sorted(by_lr)
        keys = [
            (_mean_final(by_lr[lr], "valid_error"), _mean_final(by_lr[lr], "valid_loss"))
            for lr in lrs
        ]
        out[o] = lrs[min(range(len(lrs)), key=lambda i: keys[i])]
    return out


def _order(keys):
    return sorted(keys, key=lambda o: OPTIMIZERS.index(o) if o in OPTIMIZERS else len(OPTIMIZERS))


# ------------------------------------------------------------------------------ figures


def figures(results, out_dir: str) -> list[Figure]:
    figs: list[Figure] = []
    sruns = _surface_runs(results)
    if sruns:
        figs += _surface_figures(sruns, out_dir)
    if _mlp_runs(results):
        figs += _mlp_figures(results, out_dir)
    return figs


def _seed0_paths(sruns, sname) -> dict[str, np.ndarray]:
    out = {}
    for o in OPTIMIZERS:
        runs = [r for r in sruns.get((sname, o), []) if r.seed == 0] or sruns.get((sname, o), [])
        if runs:
            out[o] = np.asarray(runs[0].extra["path"], dtype=float)
    return out


def _panel_title(sname: str) -> str:
    titles = {
        "rosenbrock": "Rosenbrock (a=1, b=100)",
        "beale": "Beale",
        "saddle": "saddle x² − y² (lr from the quadratic)",
        "quadratic": "quadratic, condition number 50",
    }
    return titles.get(sname, sname)


def _surface_figures(sruns, out_dir: str) -> list[Figure]:
    from smithing.data.surfaces import surface
    from smithing.plots import plt, save
    from smithing.plots.animation import colors, draw_contours, draw_paths, race_gif

    p = plt()
    names = [s for s in SURFACE_NAMES if any(k[0] == s for k in sruns)]
    names += sorted({k[0] for k in sruns} - set(names))
    color = colors(OPTIMIZERS)
    ncols = 2
    nrows = math.ceil(len(names) / ncols)

    # trajectories over contours
    fig, axes = p.subplots(nrows, ncols, figsize=(11, 4.6 * nrows), squeeze=False)
    for ax, sname in zip(axes.flat, names):
        s = surface(sname)
        draw_contours(ax, s)
        draw_paths(ax, _seed0_paths(sruns, sname), color)
        ax.set_title(_panel_title(sname), fontsize=10)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=8, fontsize=9)
    fig.suptitle(f"optimizer race: {STEPS} steps from the same start (open circle); ★ minimum")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    traj = save(fig, out_dir, "surfaces.png")

    # loss per step
    fig, axes = p.subplots(nrows, ncols, figsize=(11, 3.8 * nrows), squeeze=False)
    for ax, sname in zip(axes.flat, names):
        s = surface(sname)
        for o in OPTIMIZERS:
            runs = [r for r in sruns.get((sname, o), []) if r.seed == 0]
            if not runs:
                continue
            loss = np.asarray(runs[0].extra["loss"], dtype=float)
            lr = runs[0].extra["lr"]
            if s.f_min is not None:
                ax.plot(np.maximum(loss - s.f_min, 1e-16), color=color[o], label=f"{o} ({lr:.2g})")
            else:
                ax.plot(loss, color=color[o], label=f"{o} ({lr:.2g})")
        if s.f_min is not None:
            ax.set_yscale("log")
            ax.set_ylabel("f − f_min (log; floor 1e-16)")
        else:
            ax.set_ylabel("f (unbounded; a run stops far outside the view)")
        ax.set_xlabel("step")
        ax.set_title(_panel_title(sname), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2, title="optimizer (lr)", title_fontsize=7, framealpha=0.6)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    losses = save(fig, out_dir, "surface_loss.png")

    gif = race_gif(
        [(surface(n), _panel_title(n), _seed0_paths(sruns, n)) for n in names],
        out_dir,
        "race.gif",
        frames=GIF_FRAMES,
        fps=12,
        dpi=80,
        title="the race of the optimizers",
    )
    return [
        Figure(
            gif,
            f"The race, animated ({GIF_FRAMES} frames over {STEPS} steps): each optimizer from "
            "the same start with its own learning rate (see the table); ★ global minimum, "
            "× saddle.",
        ),
        Figure(
            traj,
            "Trajectories (seed 0) over contours with log-spaced levels of f − f_min "
            "(linear levels for the saddle). Learning rates: best final loss on a half-decade "
            "grid per (surface, optimizer); the saddle reuses the quadratic's rates.",
        ),
        Figure(losses, "Loss per step (seed 0) with each optimizer's chosen learning rate."),
    ]


def _mlp_figures(results, out_dir: str) -> list[Figure]:
    from smithing.plots import mean_band, plt, save
    from smithing.plots.animation import colors

    p = plt()
    runs = _mlp_runs(results)
    best = chosen_lrs(results)
    color = colors(OPTIMIZERS)
    opts = _order(runs)

    fig, axes = p.subplots(2, 2, figsize=(11, 7.6))
    for o in opts:
        rs = [r for r in runs[o][best[o]] if r.epochs]
        lab = f"{o} (lr {best[o]:g})"
        for col, key in enumerate(("train_loss", "valid_error")):
            curves = [[e.get(key, math.nan) for e in r.epochs] for r in rs]
            if key == "train_loss":  # geometric mean and std: a band that fits a log axis
                x, m, sd = mean_band([np.log(np.maximum(c, 1e-12)).tolist() for c in curves])
                mid, lo, hi = np.exp(m), np.exp(m - sd), np.exp(m + sd)
            else:
                x, m, sd = mean_band(curves)
                mid, lo, hi = 100 * m, 100 * (m - sd), 100 * (m + sd)
            if not len(x):
                continue
            ax = axes[0][col]
            ax.plot(x, mid, color=color[o], label=lab)
            ax.fill_between(x, lo, hi, color=color[o], alpha=0.15)
            _, t, _ = mean_band([[e.get("seconds", math.nan) for e in r.epochs] for r in rs])
            axes[1][col].plot(t, mid, color=color[o], label=lab)
    for row, xl in enumerate(("epoch", "wall time (s) of the optimizer's batched ensemble")):
        axes[row][0].set_yscale("log")
        axes[row][0].set_ylabel("training loss (log)")
        axes[row][1].set_ylabel("validation error (%)")
        for ax in axes[row]:
            ax.set_xlabel(xl)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(
        f"{_mlp_title(runs)}: each optimizer at its best learning rate (mean ± std over seeds)"
    )
    fig.tight_layout()
    curves = save(fig, out_dir, "mlp_curves.png")

    fig, ax = p.subplots(figsize=(7, 4.2))
    for o in opts:
        lrs = sorted(runs[o])
        ms = [
            mean_std_ci([r.final.get("valid_error", math.nan) for r in runs[o][lr]]) for lr in lrs
        ]
        ax.errorbar(
            lrs,
            [100 * m[0] for m in ms],
            [100 * m[1] for m in ms],
            color=color[o],
            marker="o",
            ms=4,
            capsize=2,
            label=o,
        )
        m_best = ms[lrs.index(best[o])][0]
        ax.plot(best[o], 100 * m_best, "o", ms=11, mfc="none", mec=color[o], mew=1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.yaxis.set_major_locator(FixedLocator([1, 2, 3, 5, 10, 20, 30, 50, 100]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final validation error (%, log)")
    ax.set_title(
        f"{_mlp_title(runs)}: the learning-rate grid (mean ± std; circled: chosen)", fontsize=10
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    grid = save(fig, out_dir, "mlp_lr_grid.png")
    return [
        Figure(
            curves,
            "Training loss and validation error per epoch (top) and against wall time "
            "(bottom) for each optimizer at the learning rate with the best mean final "
            "validation error; band ±1 std over seeds (geometric for the loss). Wall time is "
            "that of the batched ensemble that trained the optimizer's whole grid × seeds (the "
            "same size for every optimizer).",
        ),
        Figure(
            grid,
            "Final validation error against the learning rate: the grid the rates were "
            "chosen from.",
        ),
    ]


def _mlp_title(runs) -> str:
    cfg = next(iter(next(iter(runs.values())).values()))[0].config
    hidden = "-".join(str(h) for h in cfg.get("hidden", []))
    return f"MLP (hidden {hidden}, ReLU) on {cfg.get('dataset', '')}"


# ------------------------------------------------------------------------------ table


def table(results) -> Table:
    rows = []
    runs = _mlp_runs(results)
    if runs:
        best = chosen_lrs(results)
        ds = next(iter(next(iter(runs.values())).values()))[0].config.get("dataset", "mlp")
        for o in _order(runs):
            lrs = sorted(runs[o])
            rs = runs[o][best[o]]
            edge = " (grid edge)" if best[o] in (lrs[0], lrs[-1]) and len(lrs) > 1 else ""
            mv, sv, _, _ = mean_std_ci([r.final.get("valid_error", math.nan) for r in rs])
            mt, st, _, n = mean_std_ci([r.final.get("test_error", math.nan) for r in rs])
            res = (
                f"test error {100 * mt:.2f} ± {100 * st:.2f} % (valid {100 * mv:.2f} %)"
                if n
                else "n/a"
            )
            rows.append([f"MLP on {ds}", o, f"{best[o]:g}{edge}", res, n])
    sruns = _surface_runs(results)
    for sname in SURFACE_NAMES:
        for o in OPTIMIZERS:
            rs = sruns.get((sname, o))
            if not rs:
                continue
            r0 = next((r for r in rs if r.seed == 0), rs[0])
            lr = r0.extra["lr"]
            grid = r0.extra.get("lr_grid_finals")
            edge = ""
            if grid and str(lr) in (next(iter(grid)), list(grid)[-1]):
                edge = " (grid edge)"
            src = r0.extra.get("lr_tuned_on")
            src = f" (from {src})" if src and src != sname else ""
            finals = [float(r.final["final_loss"]) for r in rs]
            med = float(np.median(finals))
            d = r0.final.get("distance_to_minimum")
            dist = "" if d is None or not math.isfinite(d) else f", {d:.2g} from the minimum"
            n_left = sum(r.extra.get("left_window_step") is not None for r in rs)
            gone = f"; {n_left} left the window" if n_left else ""
            res = (
                f"final f {r0.final['final_loss']:.3g}{dist} "
                f"(median over {len(rs)} starts {med:.3g}{gone})"
            )
            rows.append([sname, o, f"{lr:.3g}{src}{edge}", res, len(rs)])
    return Table(
        ["task", "optimizer", "learning rate", "result", "runs"],
        rows,
        "MLP: the learning rate with the best mean final validation error on the grid; test "
        "error mean ± sample std over seeds at that rate. Surfaces: seed 0 from the exact start "
        f"after {STEPS} steps; the median includes the jittered starts of seeds > 0.",
    )


REFERENCES = """
Qualitative findings only; no numbers are claimed for these comparisons.
- Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, section 6.2 and figure 2
  (multilayer networks on MNIST, 784-1000-1000-10 ReLU, minibatch 128): Adam's training cost
  falls fastest of the methods compared (AdaGrad, RMSProp, SGD with Nesterov momentum,
  AdaDelta). As recalled (confidence U: check the panel before quoting), the compared panel
  trains with dropout; this study trains without dropout and tunes every rate on the
  validation set.
- cs231n (Stanford), "Neural Networks Part 3: learning and evaluation", the animations by Alec
  Radford: momentum-based methods overshoot ("a ball rolling down the hill"); at a saddle point
  SGD has a hard time breaking the symmetry, while RMSprop's denominator raises the effective
  learning rate along the flat direction and lets it escape.
- Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
  learning", ICML 2013: Nesterov's look-ahead gradient corrects the velocity sooner than
  classical momentum, which damps oscillations.
"""


def run(config: dict, seed: int, device: str = "cpu") -> RunResult:
    """The runner's entry point for this study's non-"mlp" (``"surface"``) variants."""
    return run_surface(config, seed, device)


STUDY = register(
    Study(
        name="optimizer-race",
        description="sgd, momentum, nesterov, adagrad, rmsprop, adam, adadelta, adamw: "
        "trajectories on 2-D surfaces (animated) and an MLP's learning curves with tuned rates",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 3, "paper": 3},
        run=run,
        references=REFERENCES,
    )
)
