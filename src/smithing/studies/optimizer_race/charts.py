"""The race's figures: trajectories on the surfaces (and their animation) and the MLP's
learning curves."""

from __future__ import annotations

import math

import numpy as np

from smithing.experiment import (
    Figure,
    mean_std_ci,
)
from smithing.studies.optimizer_race.configs import (
    _mlp_runs,
    _order,
    _surface_runs,
    chosen_lrs,
)
from smithing.studies.optimizer_race.surfaces import (
    GIF_FRAMES,
    OPTIMIZERS,
    STEPS,
    SURFACE_NAMES,
)

__all__ = [
    "figures",
]

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
