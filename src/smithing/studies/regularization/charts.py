"""The regularization study's figures from its runs: the generalization gap, the first layer's
weight histograms, and the learning curves."""

from __future__ import annotations

import math

import numpy as np

from smithing.experiment import mean_std_ci

__all__ = [
    "curves_figure",
    "gap_figure",
    "weights_figure",
]


# --------------------------------------------------------------------------- figures
def _finals(results, v: str, key: str) -> tuple[float, float]:
    mean, std, _, n = mean_std_ci(results.finals(v, key))
    return (100 * mean, 100 * std) if n else (math.nan, math.nan)


def gap_figure(results, out_dir: str) -> str:
    from smithing.plots import plt, save

    p = plt()
    vs = results.variants()
    keys = (("train_error", "train", "#9ecae1"), ("valid_error", "valid", "#6baed6"))
    keys += (("test_error", "test", "#08519c"),)
    fig, ax = p.subplots(figsize=(max(7.0, 1.15 * len(vs)), 4.0))
    x = np.arange(len(vs))
    width = 0.27
    for i, (key, label, color) in enumerate(keys):
        ms = [_finals(results, v, key) for v in vs]
        ax.bar(
            x + (i - 1) * width,
            [m for m, _ in ms],
            width,
            yerr=[s for _, s in ms],
            color=color,
            label=label,
            capsize=2,
        )
    for j, v in enumerate(vs):
        gap = _finals(results, v, "test_error")[0] - _finals(results, v, "train_error")[0]
        top = max(_finals(results, v, k)[0] + _finals(results, v, k)[1] for k, _, _ in keys)
        if math.isfinite(gap):
            ax.annotate(
                f"gap {gap:.1f}",
                (j, top),
                ha="center",
                va="bottom",
                fontsize=7.5,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax.set_xticks(x, vs, rotation=20, ha="right")
    ax.set_ylabel("error (%)")
    ax.set_title("train / valid / test error (mean ± std over seeds); gap = test − train")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return save(fig, out_dir, "gap.png")


def weights_figure(results, out_dir: str) -> str | None:
    from smithing.plots import plt, save

    def summed(v):
        runs = [r for r in results.of(v) if r.status == "done" and "w1" in r.extra]
        if not runs:
            return None
        h = runs[0].extra["w1"]
        counts = np.sum([r.extra["w1"]["log_counts"] for r in runs], axis=0).astype(float)
        n = sum(r.extra["w1"]["n"] for r in runs)
        small = float(np.mean([r.extra["w1"]["small_fraction"] for r in runs]))
        rms = float(np.mean([r.extra["w1"]["rms"] for r in runs]))
        zeros = sum(r.extra["w1"]["zeros"] for r in runs)
        return np.array(h["log_edges"]), counts / max(1, n), small, rms, zeros / max(1, n)

    vs = [v for v in results.variants() if summed(v) is not None]
    if not vs:
        return None
    p = plt()
    ncol = 4
    nrow = math.ceil(len(vs) / ncol)
    fig, axes = p.subplots(
        nrow, ncol, figsize=(3.3 * ncol, 2.5 * nrow), sharex=True, sharey=True, squeeze=False
    )
    ref = summed(vs[0])
    colors = p.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, v in enumerate(vs):
        ax = axes[i // ncol][i % ncol]
        edges, frac, small, rms, zeros = summed(v)
        if i > 0:
            ax.stairs(ref[1], ref[0], color="0.55", lw=1.0, label=vs[0])
        ax.stairs(frac, edges, fill=True, alpha=0.6, color=colors[i % len(colors)], label=v)
        ax.set_title(v, fontsize=9)
        txt = f"|w|<1e-3: {100 * small:.1f} %\nrms {rms:.3f}"
        if zeros:
            txt += f"\nexact 0: {100 * zeros:.1f} %"
        ax.text(0.03, 0.95, txt, transform=ax.transAxes, va="top", fontsize=7.5)
        ax.grid(alpha=0.3)
        if i == 1:
            ax.legend(fontsize=7, loc="center left")
    for j in range(len(vs), nrow * ncol):
        axes[j // ncol][j % ncol].axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("log10 |w| (first layer)")
    for row in axes:
        row[0].set_ylabel("fraction of weights")
    fig.suptitle("first-layer weights, all seeds (grey: " + vs[0] + ")", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, "weights.png")


def curves_figure(results, out_dir: str) -> str:
    """Per-epoch training (eval mode) and validation error, y axis zoomed on the final values."""
    from smithing.plots import mean_band, plt, save

    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(11, 3.9))
    top = 5.0
    for ax, key in zip(axes, ("train_error", "valid_error")):
        for v in results.variants():
            x, m, s = mean_band(results.curves(v, key))
            if not len(x):
                continue
            (line,) = ax.plot(x, 100 * m, label=v, lw=1.3)
            ax.fill_between(x, 100 * (m - s), 100 * (m + s), color=line.get_color(), alpha=0.15)
            if key == "valid_error" and np.isfinite(m[-1]):
                top = max(top, 300 * float(np.nanmean(m[-5:])))
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.replace("_", " ") + " (%)")
        ax.grid(alpha=0.3)
    for ax in axes:
        ax.set_ylim(0, top)
    axes[1].legend(fontsize=7.5, ncol=2)
    fig.suptitle(
        "per-epoch error, mean over seeds (band ±1 std); y axis cut at 3x the final "
        "validation error",
        fontsize=10,
    )
    fig.tight_layout()
    return save(fig, out_dir, "curves.png")
