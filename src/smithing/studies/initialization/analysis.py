"""The initialization study's deep-linear summary and figure, the figure list and the table."""

from __future__ import annotations

import math

import numpy as np

from smithing.experiment import (
    Figure,
    Table,
    error_table,
)
from smithing.studies.initialization.charts import (
    _is_linear,
    figure_curves,
    figure_final,
    figure_variance,
    mlp_results,
)
from smithing.studies.initialization.configs import (
    INITS,
    THRESHOLD,
)

__all__ = [
    "figure_deep_linear",
    "figures",
    "linear_summary",
    "linear_text",
    "table",
]


def linear_summary(results) -> dict[str, dict[int, dict]]:
    """init -> depth -> {"epochs": [per seed, NaN = not reached], "cap", "cond": [...]}."""
    out: dict[str, dict[int, dict]] = {}
    for r in results.runs:
        if not _is_linear(r) or r.status != "done":
            continue
        d = out.setdefault(r.config["linear_init"], {}).setdefault(
            int(r.config["depth"]), {"epochs": [], "cap": r.extra.get("cap"), "cond": []}
        )
        d["epochs"].append(float(r.final.get("epochs_to_threshold", math.nan)))
        sv = np.asarray(r.extra.get("singular_values", []), float)
        if len(sv):
            d["cond"].append(float(sv.max() / max(sv.min(), 1e-30)))
    return out


def figure_deep_linear(results, out_dir: str) -> str | None:
    from smithing.plots import plt, save

    summ = linear_summary(results)
    if not summ:
        return None
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(11, 4.2))
    colors = {"orthogonal": "tab:blue", "gaussian": "tab:red"}
    labels = {"orthogonal": "orthogonal", "gaussian": "scaled Gaussian N(0, 1/width)"}
    for init, by_depth in summ.items():
        depths = sorted(by_depth)
        c = colors.get(init, "k")
        med, reached_d = [], []
        for d in depths:
            e = np.asarray(by_depth[d]["epochs"])
            cap = by_depth[d]["cap"] or 1
            ok = e[np.isfinite(e)]
            axes[0].scatter([d] * len(ok), ok, color=c, s=14, alpha=0.6)
            n_miss = int((~np.isfinite(e)).sum())
            if n_miss:
                axes[0].scatter([d], [cap], marker="^", facecolors="none", edgecolors=c, s=60)
                axes[0].annotate(
                    f"{n_miss}× not in {cap}",
                    (d, cap),
                    fontsize=7,
                    color=c,
                    xytext=(-28, 7),
                    textcoords="offset points",
                )
            if len(ok) == len(e):
                med.append(float(np.median(ok)))
                reached_d.append(d)
        if reached_d:
            axes[0].plot(reached_d, med, "o-", color=c, label=labels.get(init, init))
        else:
            axes[0].plot([], [], "o-", color=c, label=labels.get(init, init))
        conds = [np.exp(np.mean(np.log(by_depth[d]["cond"]))) for d in depths]
        axes[1].plot(depths, conds, "o-", color=c, label=labels.get(init, init))
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("depth (number of weight matrices)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    caps = [d["cap"] for by_depth in summ.values() for d in by_depth.values() if d["cap"]]
    if caps:
        axes[0].set_ylim(top=3 * max(caps))
    axes[0].set_ylabel(f"epochs to loss < {THRESHOLD:g} × zero predictor's")
    axes[0].set_title("learning time (best lr of a grid; line: median)")
    axes[1].set_ylabel("σ_max / σ_min of W_depth ⋯ W_1 at init")
    axes[1].set_title("conditioning of the end-to-end map at init")
    fig.suptitle("Deep linear networks (Saxe et al. 2014): orthogonal vs scaled Gaussian init")
    fig.tight_layout()
    return save(fig, out_dir, "deep_linear.png")


def linear_text(results) -> str:
    """One sentence per init: median epochs to the threshold by depth ('-' = not reached)."""
    parts = []
    for init, by_depth in linear_summary(results).items():
        cells = []
        for d in sorted(by_depth):
            e = np.asarray(by_depth[d]["epochs"])
            ok = e[np.isfinite(e)]
            miss = len(e) - len(ok)
            cell = f"{np.median(e):.0f}" if miss == 0 else f"{miss}/{len(e)} not reached"
            cells.append(f"depth {d}: {cell}")
        parts.append(f"{init}: " + ", ".join(cells))
    return "Median epochs — " + "; ".join(parts) + "." if parts else ""


def figures(results, out_dir: str) -> list[Figure]:
    mres = mlp_results(results)
    specs = [
        (
            figure_curves(mres, out_dir),
            "Training loss and validation error per epoch (log scales) for every initializer, "
            "mean ± std over seeds (solid: uniform laws, dashed: Gaussian laws and sparse).",
        ),
        (
            figure_final(mres, out_dir),
            "Final test error per seed (log scale; bar: mean over seeds).",
        ),
        (
            figure_variance(results, out_dir),
            "Why the fan-in / fan-out rules exist: variance of the activations (left) and of "
            "the back-propagated gradients (right) layer by layer at initialization (log "
            "scale). Fixed scales (uniform, normal) shrink both geometrically with depth; the "
            "fan-based rules keep them within a small factor; LSUV sets each layer's "
            "pre-activation variance to 1 on data.",
        ),
        (
            figure_deep_linear(results, out_dir),
            "Deep linear networks: epochs of full-batch gradient descent to reach the loss "
            "threshold vs depth (best learning rate of a grid per depth; open triangles: not "
            "reached within the cap) and the conditioning of the end-to-end map at init. "
            "Orthogonal factors keep every singular value of the product at 1; Gaussian "
            "factors spread them more with every layer, and the slowest modes set the "
            "learning time. " + linear_text(results),
        ),
    ]
    return [Figure(path, caption) for path, caption in specs if path]


def table(results) -> Table:
    mres = mlp_results(results)
    t = error_table(
        mres,
        "test_error",
        "Final test error (%): mean ± sample std over seeds; 95 % Student-t interval of the "
        "mean. Rule: the weight law of each initializer (biases 0).",
    )
    cols = ["variant", "rule", *t.columns[1:]]
    rows = [[r[0], INITS[r[0]][2] if r[0] in INITS else "", *r[1:]] for r in t.rows]
    return Table(cols, rows, t.caption)
