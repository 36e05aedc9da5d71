""" "Or just wait longer?", exploding gradients and clipping; the study's figure list and table."""

from __future__ import annotations

import math

import numpy as np

from smithing.experiment import (
    Figure,
    Table,
    mean_std_ci,
)
from smithing.studies.vanishing_gradients.charts import (
    _color,
    _epoch_series,
    _label,
    _runs,
    _with_init,
    figure_activation_epochs,
    figure_activations,
    figure_curves,
    figure_grad_epochs,
    figure_grad_histograms,
    figure_grad_init,
    figure_histograms,
)
from smithing.studies.vanishing_gradients.configs import (
    EXPLODING,
    GOOD,
    LONG,
)

__all__ = [
    "catch_up",
    "figures",
    "table",
    "top_layer_drift",
]


def catch_up(results, slow: str = "sigmoid-small", good=GOOD) -> dict:
    """When (if) the slow variant's mean validation error reaches the good ones' final level.

    ``target``: the highest final mean validation error among the ``good`` variants (the
    easiest level to reach); ``epoch``: the first epoch at which ``slow``'s mean validation
    error is at or below it (None if never); ``good_epochs`` / ``slow_epochs``: their lengths.
    """
    finals, lens = [], []
    for v in good:
        runs = [r for r in results.of(v) if r.status == "done"]
        if runs:
            x, m = _epoch_series(runs, "valid_error")
            finals.append(float(m[-1]))
            lens.append(len(x))
    runs = [r for r in results.of(slow) if r.status == "done"]
    if not finals or not runs:
        return {}
    target = max(finals)
    x, m = _epoch_series(runs, "valid_error")
    hit = np.nonzero(m <= target)[0]
    return {
        "target": target,
        "epoch": int(x[hit[0]]) if len(hit) else None,
        "good_epochs": max(lens),
        "slow_epochs": len(x),
        "slow_final": float(m[-1]),
    }


def figure_wait_longer(results, out_dir: str) -> str | None:
    from smithing.plots import plt, save

    info = catch_up(results)
    if not info:
        return None
    p = plt()
    fig, ax = p.subplots(figsize=(8, 4.4))
    for i, v in enumerate((*GOOD, "sigmoid-small")):
        runs = [r for r in results.of(v) if r.status == "done"]
        if not runs:
            continue
        for r in runs:
            ax.plot(
                np.arange(1, len(r.epochs) + 1),
                [100 * e.get("valid_error", np.nan) for e in r.epochs],
                color=_color(v, i),
                alpha=0.25,
                lw=0.8,
            )
        x, m = _epoch_series(runs, "valid_error")
        ax.plot(x, 100 * m, color=_color(v, i), lw=2, label=f"{_label(v)} ({len(x)} epochs)")
    ax.axhline(100 * info["target"], color="gray", ls="--", lw=1)
    ax.axvline(info["good_epochs"], color="gray", ls=":", lw=1)
    if info["epoch"] is not None:
        msg = (
            f"sigmoid, U(±0.05) reaches {100 * info['target']:.1f} % at epoch {info['epoch']} "
            f"({info['epoch'] / info['good_epochs']:.1f}× the others' {info['good_epochs']})"
        )
        ax.axvline(info["epoch"], color="tab:red", ls="--", lw=1)
    else:
        msg = (
            f"sigmoid, U(±0.05) has NOT reached {100 * info['target']:.1f} % after "
            f"{info['slow_epochs']} epochs ({info['slow_epochs'] / info['good_epochs']:.0f}× the "
            f"others' {info['good_epochs']}); it ends at {100 * info['slow_final']:.1f} %"
        )
    ax.set_xscale("log")
    ax.set_xlabel("epoch (log)")
    ax.set_ylabel("validation error (%)")
    ax.set_title("Or just wait longer?\n" + msg, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out_dir, "wait_longer.png")


def figure_exploding(results, out_dir: str) -> str | None:
    from smithing.plots import plt, save

    vs = [v for v in EXPLODING if _runs(results, v)]
    if not vs:
        return None
    p = plt()
    fig, axes = p.subplots(1, 3, figsize=(14, 3.9))
    for i, v in enumerate(vs):
        runs = _runs(results, v)
        color = _color(v, i)
        for j, r in enumerate(runs):
            sl = np.asarray(r.extra.get("step_loss", []), float)
            lab = _label(v) if j == 0 else None
            axes[0].plot(np.arange(1, len(sl) + 1), sl, color=color, alpha=0.7, label=lab)
            if r.status == "diverged" and j == 0 and len(sl):
                bad = np.nonzero(~np.isfinite(sl))[0]
                if len(bad):
                    axes[0].axvline(bad[0] + 1, color=color, ls=":", lw=1)
                    axes[0].text(
                        0.35,
                        0.9,
                        f"no clipping: loss = {sl[bad[0]]:g} at step {bad[0] + 1}",
                        color=color,
                        fontsize=8,
                        transform=axes[0].transAxes,
                    )
        x, m = _with_init(
            runs,
            lambda e, r: (
                math.sqrt(sum(g * g for g in r.extra["init"]["grad_norm"]))
                if e is None
                else e.get("grad_norm_total", np.nan)
            ),
        )
        axes[1].plot(x, m, "o-", ms=3, color=color, label=_label(v))
        xe, me = _epoch_series(runs, "valid_error")
        axes[2].plot(xe, 100 * me, "o-", ms=3, color=color, label=_label(v))
        if any(r.status == "diverged" for r in runs):
            n_div = sum(r.status == "diverged" for r in runs)
            axes[2].text(
                0.3,
                0.9,
                f"no clipping: {n_div}/{len(runs)} runs diverged in epoch 1",
                color=color,
                fontsize=8,
                transform=axes[2].transAxes,
            )
    for v in ("relu-he",):
        runs = _runs(results, v)
        if runs:
            x, m = _with_init(
                runs,
                lambda e, r: (
                    math.sqrt(sum(g * g for g in r.extra["init"]["grad_norm"]))
                    if e is None
                    else e.get("grad_norm_total", np.nan)
                ),
            )
            axes[1].plot(x, m, "o-", ms=3, color=_color(v), label=_label(v) + " (reference)")
            xe, me = _epoch_series(runs, "valid_error")
            axes[2].plot(xe, 100 * me, "o-", ms=3, color=_color(v), label=_label(v))
    axes[0].set_yscale("log")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("training step (log)")
    axes[0].set_ylabel("mini-batch loss")
    axes[0].set_title("the first steps")
    axes[1].set_yscale("log")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("epoch (log; 0.5 = init)")
    axes[1].set_ylabel("global ||dL/dW|| (fixed batch, unclipped)")
    axes[1].set_title("gradient norm")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("validation error (%)")
    axes[2].set_ylim(0, 100)
    axes[2].set_title("validation error")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("Exploding gradients: ReLU with W ~ N(0, 1), with and without clipping")
    fig.tight_layout()
    return save(fig, out_dir, "exploding.png")


def top_layer_drift(results, variant: str = "sigmoid-small") -> tuple[float, float, int] | None:
    """Mean activation of the top hidden layer at init and at the end (seed-mean), epochs."""
    runs = [r for r in results.of(variant) if r.status == "done" and r.epochs and "init" in r.extra]
    if not runs:
        return None
    top = len(runs[0].extra["init"]["act_mean"])
    start = float(np.mean([r.extra["init"]["act_mean"][-1] for r in runs]))
    end = float(np.mean([r.epochs[-1].get(f"act_mean_{top}", np.nan) for r in runs]))
    return start, end, max(len(r.epochs) for r in runs)


def figures(results, out_dir: str) -> list[Figure]:
    info = catch_up(results)
    drift = top_layer_drift(results)
    drift_msg = (
        f" With small sigmoid weights the top hidden layer's mean activation moves from "
        f"{drift[0]:.2f} to {drift[1]:.2f} in {drift[2]} epochs: it is driven towards the "
        "saturation at 0 that Glorot & Bengio (2010) describe."
        if drift
        else ""
    )
    if info and info.get("epoch") is not None:
        wait = (
            f"it catches up with the worst of the well-initialized nets at epoch {info['epoch']}."
        )
    elif info:
        wait = (
            f"it has not caught up after {info['slow_epochs']} epochs "
            f"({info['slow_epochs'] / max(1, info['good_epochs']):.0f}× longer)."
        )
    else:
        wait = ""
    specs = [
        (
            figure_activations(out_dir),
            "The logistic sigmoid's derivative is at most 1/4, tanh's at most 1: from the "
            "derivatives alone an error signal passing back through L sigmoid layers shrinks "
            "by at least 4^L.",
        ),
        (
            figure_grad_init(results, out_dir),
            "The headline: per-layer weight-gradient norm at initialization (log scale). Sigmoid "
            "+ U(±0.05): the first layer's gradient is orders of magnitude below the last's; "
            "Glorot (tanh), He (ReLU) and Glorot ×4 (sigmoid) keep them comparable; N(0, 1) "
            "makes them huge.",
        ),
        (
            figure_grad_epochs(results, out_dir),
            "Per-layer gradient norm on a fixed batch at the end of every epoch (log-log).",
        ),
        (
            figure_activation_epochs(results, out_dir),
            "Mean and std of each hidden layer's activations through training (seed 0)."
            + drift_msg,
        ),
        (
            figure_histograms(results, out_dir),
            "Activation histograms per hidden layer at initialization and after training "
            "(Glorot & Bengio 2010, fig. 6 style; log y for ReLU, whose zeros form a spike).",
        ),
        (
            figure_grad_histograms(results, out_dir),
            "Distribution of the back-propagated per-example gradients log10 |dL/dz| per layer "
            "at initialization: with small sigmoid weights each layer down shifts it by about "
            "a decade (Glorot & Bengio 2010, fig. 7, here on a log axis).",
        ),
        (
            figure_curves(results, out_dir),
            "Training loss and validation error, mean over seeds (log epoch axis).",
        ),
        (
            figure_wait_longer(results, out_dir),
            "Or just wait longer? The badly initialized deep sigmoid net trained "
            f"{LONG}× longer than the others (log epoch axis; thin lines: seeds). " + wait,
        ),
        (
            figure_exploding(results, out_dir),
            "Exploding gradients: with W ~ N(0, 1) the ReLU net's gradient norm is ~10^6; plain "
            "SGD's first steps blow the loss up to inf/NaN (status 'diverged'), while clipping "
            "the global gradient norm to 1 (Pascanu et al. 2013) keeps the steps bounded and "
            "the net learns.",
        ),
    ]
    return [Figure(path, caption) for path, caption in specs if path]


def table(results) -> Table:
    rows = []
    for v in results.variants():
        runs = results.of(v)
        ratios = [
            r.extra.get("grad_ratio_init", math.nan)
            for r in runs
            if r.status in ("done", "diverged")
        ]
        ratios = [x for x in ratios if isinstance(x, float) and x > 0 and math.isfinite(x)]
        ratio = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else math.nan
        mean, std, _, n = mean_std_ci(results.finals(v, "test_error"))
        epochs = max((len(r.epochs) for r in runs), default=0)
        rows.append(
            [
                v,
                _label(v),
                epochs,
                f"{ratio:.2g}",
                f"{100 * mean:.2f} ± {100 * std:.2f}" if n else "n/a",
                f"{n}/{len(runs)}",
                sum(r.status == "diverged" for r in runs),
            ]
        )
    return Table(
        [
            "variant",
            "activation, init",
            "epochs",
            "first/last grad norm at init",
            "test error (%) mean ± std",
            "done",
            "diverged",
        ],
        rows,
        "First/last: ||dL/dW_1|| / ||dL/dW_out|| at initialization (geometric mean over seeds). "
        "Test error over the runs that finished (a diverged run has none).",
    )
