"""The figures of the activations and of the per-layer gradients, at initialization and through
training."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from smithing.studies.vanishing_gradients.configs import (
    COLORS,
    DIAG_BATCH,
    LOG_GRAD_EDGES,
    MAIN,
    VARIANTS,
)

__all__ = []

# ----------------------------------------------------------------------------- figures


def _label(v: str) -> str:
    return VARIANTS[v][0] if v in VARIANTS else v


def _color(v: str, i: int = 0) -> str:
    return COLORS.get(v, f"C{i % 10}")


def _runs(results, v):
    return [r for r in results.of(v) if r.status in ("done", "diverged")]


def _epoch_series(runs, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Epochs and the mean over runs of ``key`` (NaN-padded)."""
    L = max((len(r.epochs) for r in runs), default=0)
    a = np.full((len(runs), L), np.nan)
    for i, r in enumerate(runs):
        for j, e in enumerate(r.epochs):
            a[i, j] = float(e.get(key, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.nanmean(a, 0) if L else np.array([])
    return np.arange(1, L + 1), m


def figure_activations(out_dir: str) -> str:
    """sigma, sigma' <= 1/4, tanh, tanh' <= 1 (and the bound (1/4)^L through L layers)."""
    from smithing.nn.activations import derivative
    from smithing.plots import plt, save

    p = plt()
    x = torch.linspace(-6, 6, 601)
    fig, axes = p.subplots(1, 2, figsize=(11, 3.8))
    ax = axes[0]
    ax.plot(x, torch.sigmoid(x), color="tab:red", label="σ(x) = 1/(1+exp(-x))")
    ax.plot(x, derivative("sigmoid", x), color="tab:red", ls="--", label="σ'(x) = σ(1-σ) ≤ 1/4")
    ax.plot(x, torch.tanh(x), color="tab:blue", label="tanh(x)")
    ax.plot(x, derivative("tanh", x), color="tab:blue", ls="--", label="tanh'(x) = 1-tanh² ≤ 1")
    ax.axhline(0.25, color="gray", lw=0.8, ls=":")
    ax.annotate("1/4", (5.2, 0.27), color="gray")
    ax.set_xlabel("x")
    ax.set_title("the activations and their derivatives")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax = axes[1]
    depth = np.arange(0, 11)
    ax.semilogy(depth, 0.25**depth, "o-", color="tab:red", label="sigmoid: max σ' = 1/4 → (1/4)^L")
    ax.semilogy(depth, 1.0 + 0 * depth, "o-", color="tab:blue", label="tanh: max tanh' = 1 → 1")
    ax.set_xlabel("layers L the error signal passes back through")
    ax.set_ylabel("product of the derivatives (upper bound)")
    ax.set_title("the derivative factor alone, at best (z = 0)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out_dir, "activations.png")


def figure_grad_init(results, out_dir: str) -> str | None:
    from smithing.plots import plt, save

    p = plt()
    fig, ax = p.subplots(figsize=(7.5, 4.6))
    drawn = False
    for i, v in enumerate(results.variants()):
        if v == "relu-N01-clip":  # same init as relu-N01-noclip
            continue
        runs = [r for r in _runs(results, v) if "init" in r.extra]
        if not runs:
            continue
        a = np.array([r.extra["init"]["grad_norm"] for r in runs])  # (seeds, layers)
        layers = np.arange(1, a.shape[1] + 1)
        g = np.exp(np.log(a).mean(0))  # geometric mean over seeds
        label = _label(v).replace(", no clipping", "")
        ratio = np.exp(np.log(a[:, 0] / a[:, -1]).mean())
        ax.semilogy(layers, g, "o-", color=_color(v, i), label=f"{label}: first/last = {ratio:.1g}")
        if len(runs) > 1:
            ax.fill_between(layers, a.min(0), a.max(0), color=_color(v, i), alpha=0.15)
        drawn = True
    if not drawn:
        p.close(fig)
        return None
    ax.set_xlabel("weight layer l (1 = input → hidden 1, last = hidden → output)")
    ax.set_ylabel("||dL/dW_l|| at initialization")
    ax.set_xticks(layers)
    ax.set_title("Per-layer gradient norm at initialization (geometric mean; band: min–max)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out_dir, "grad_norm_init.png")


def _epoch_axis(ax, epochs_max: int) -> None:
    ax.set_xscale("log")
    ax.set_xlim(0.45, epochs_max * 1.15)
    ax.set_xlabel("epoch (log; 'init' = before training)")


def _with_init(runs, key_fn) -> tuple[np.ndarray, np.ndarray]:
    """x = [0.5 (init), 1, 2, ...] and the mean over runs of key_fn(record) (init first)."""
    L = max(len(r.epochs) for r in runs)
    a = np.full((len(runs), L + 1), np.nan)
    for i, r in enumerate(runs):
        a[i, 0] = key_fn(None, r)
        for j, e in enumerate(r.epochs):
            a[i, j + 1] = key_fn(e, r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.exp(np.nanmean(np.log(a), 0))
    return np.concatenate([[0.5], np.arange(1, L + 1)]), m


def figure_grad_epochs(results, out_dir: str) -> str | None:
    from smithing.plots import plt, save

    p = plt()
    vs = [v for v in results.variants() if _runs(results, v) and v != "relu-N01-noclip"]
    if not vs:
        return None
    cols = min(3, len(vs))
    rows = math.ceil(len(vs) / cols)
    fig, axes = p.subplots(rows, cols, figsize=(4.6 * cols, 3.5 * rows), squeeze=False)
    cmap = p.get_cmap("viridis")
    for k, v in enumerate(vs):
        ax = axes[k // cols][k % cols]
        runs = [r for r in _runs(results, v) if "init" in r.extra]
        if not runs:
            ax.set_visible(False)
            continue
        n_layers = len(runs[0].extra["init"]["grad_norm"])
        for layer in range(1, n_layers + 1):

            def key_fn(e, r, layer=layer):
                if e is None:
                    return r.extra["init"]["grad_norm"][layer - 1]
                return e.get(f"grad_norm_{layer}", np.nan)

            x, m = _with_init(runs, key_fn)
            color = cmap((layer - 1) / max(1, n_layers - 1))
            ax.plot(x, m, color=color, label=f"layer {layer}")
        ax.set_yscale("log")
        _epoch_axis(ax, max(len(r.epochs) for r in runs))
        ax.set_title(_label(v), fontsize=10)
        ax.grid(alpha=0.3, which="both")
        if k % cols == 0:
            ax.set_ylabel("||dL/dW_l|| (fixed batch)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for k in range(len(vs), rows * cols):
        axes[k // cols][k % cols].set_axis_off()
    if len(vs) < rows * cols:
        axes[-1][-1].legend(handles, labels, loc="center", fontsize=9, title="weight layer")
    else:
        axes[0][0].legend(fontsize=7, ncol=2)
    fig.suptitle("Per-layer gradient norm through training (1 = first layer, dark)")
    fig.tight_layout()
    return save(fig, out_dir, "grad_norm_epochs.png")


def figure_histograms(results, out_dir: str) -> str | None:
    """Activation histograms per hidden layer, at init and after training (G&B fig. 6)."""
    from smithing.plots import plt, save

    p = plt()
    vs = [v for v in results.variants() if v in MAIN and _runs(results, v)]
    if not vs:
        return None
    fig, axes = p.subplots(len(vs), 2, figsize=(10, 2.6 * len(vs)), squeeze=False)
    cmap = p.get_cmap("viridis")
    for row, v in enumerate(vs):
        run0 = next((r for r in _runs(results, v) if "init" in r.extra), None)
        for col, when in enumerate(("init", "trained")):
            ax = axes[row][col]
            d = run0.extra.get(when) if run0 is not None else None
            if not d or "act_hist" not in d:
                ax.text(0.5, 0.5, "diverged: no histogram", ha="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            hs = d["act_hist"]
            for i, h in enumerate(hs):
                counts = np.asarray(h["counts"], float)
                edges = np.asarray(h["edges"], float)
                dens = counts / max(counts.sum(), 1.0)
                ax.stairs(dens, edges, color=cmap(i / max(1, len(hs) - 1)), label=f"layer {i + 1}")
            if VARIANTS.get(v, ("", {}))[1].get("activation") == "relu":
                ax.set_yscale("log")
            title = "at initialization" if when == "init" else f"after {len(run0.epochs)} epochs"
            ax.set_title(f"{_label(v)}: {title}", fontsize=9)
            ax.set_ylabel("fraction of values")
            ax.grid(alpha=0.3)
            if row == 0 and col == 0:
                ax.legend(fontsize=7, ncol=2)
    axes[-1][0].set_xlabel("activation value")
    axes[-1][1].set_xlabel("activation value")
    fig.suptitle(f"Hidden activations on {DIAG_BATCH} training examples (seed 0)")
    fig.tight_layout()
    return save(fig, out_dir, "activation_histograms.png")


def figure_grad_histograms(results, out_dir: str) -> str | None:
    """Histograms of log10 |dL/dz_l| per layer at init (Glorot & Bengio fig. 7, log axis)."""
    from smithing.plots import plt, save

    p = plt()
    vs = [v for v in results.variants() if v in MAIN and _runs(results, v)]
    if not vs:
        return None
    cols = min(4, len(vs))
    fig, axes = p.subplots(1, cols, figsize=(4.0 * cols, 3.4), squeeze=False, sharey=True)
    cmap = p.get_cmap("viridis")
    for k, v in enumerate(vs[:cols]):
        ax = axes[0][k]
        run0 = next((r for r in _runs(results, v) if "init" in r.extra), None)
        if run0 is None:
            continue
        edges = np.asarray(run0.extra.get("log_grad_edges", LOG_GRAD_EDGES.tolist()))
        hs = run0.extra["init"].get("log_grad_hist", [])
        zeros = run0.extra["init"].get("grad_zero", [0.0] * len(hs))
        for i, counts in enumerate(hs):
            c = np.asarray(counts, float)
            ax.stairs(c / max(c.sum(), 1.0), edges, color=cmap(i / max(1, len(hs) - 1)))
            ax.plot([], [], color=cmap(i / max(1, len(hs) - 1)), label=f"layer {i + 1}")
        title = _label(v)
        hidden_zeros = [z for z in zeros[:-1] if z > 0]
        if hidden_zeros:
            title += f"\n(non-zero only; {100 * np.mean(hidden_zeros):.0f} % exact zeros)"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("log10 |dL/dz_l| (per example)")
        ax.grid(alpha=0.3)
    lo, hi = _occupied_range(results, vs[:cols])
    for ax in axes[0]:
        ax.set_xlim(lo - 0.5, hi + 0.5)
    axes[0][0].set_ylabel("fraction")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Back-propagated gradients per layer at initialization (1 = first layer, dark)")
    fig.tight_layout()
    return save(fig, out_dir, "grad_histograms.png")


def _occupied_range(results, vs) -> tuple[float, float]:
    """The range of LOG_GRAD_EDGES holding counts in the seed-0 init histograms of ``vs``."""
    lo, hi = math.inf, -math.inf
    for v in vs:
        run0 = next((r for r in _runs(results, v) if "init" in r.extra), None)
        if run0 is None:
            continue
        edges = np.asarray(run0.extra.get("log_grad_edges", LOG_GRAD_EDGES.tolist()))
        for counts in run0.extra["init"].get("log_grad_hist", []):
            nz = np.nonzero(np.asarray(counts) > 0)[0]
            if len(nz):
                lo, hi = min(lo, edges[nz[0]]), max(hi, edges[nz[-1] + 1])
    if not math.isfinite(lo):
        return float(LOG_GRAD_EDGES[0]), float(LOG_GRAD_EDGES[-1])
    return float(lo), float(hi)


def figure_activation_epochs(results, out_dir: str) -> str | None:
    """Mean (and std band) of each hidden layer's activation through training (G&B fig. 2)."""
    from smithing.plots import plt, save

    p = plt()
    vs = [v for v in results.variants() if v in MAIN and _runs(results, v)]
    if not vs:
        return None
    fig, axes = p.subplots(2, len(vs), figsize=(4.2 * len(vs), 6.2), squeeze=False)
    cmap = p.get_cmap("viridis")
    for k, v in enumerate(vs):
        runs = [r for r in _runs(results, v) if "init" in r.extra]
        r = runs[0]
        n = len(r.extra["init"]["act_mean"])
        x = np.concatenate([[0.5], np.arange(1, len(r.epochs) + 1)])
        for row, stat in enumerate(("mean", "std")):
            ax = axes[row][k]
            for layer in range(1, n + 1):
                ys = [r.extra["init"][f"act_{stat}"][layer - 1]] + [
                    e.get(f"act_{stat}_{layer}", np.nan) for e in r.epochs
                ]
                color = cmap((layer - 1) / max(1, n - 1))
                ax.plot(x, ys, color=color, label=f"layer {layer}")
            _epoch_axis(ax, len(r.epochs))
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(_label(v), fontsize=10)
    axes[0][0].set_ylabel("mean activation (seed 0)")
    axes[1][0].set_ylabel("std of the activations (seed 0)")
    axes[0][0].legend(fontsize=7, ncol=2)
    fig.suptitle("Hidden activations through training (Glorot & Bengio 2010, fig. 2 style)")
    fig.tight_layout()
    return save(fig, out_dir, "activations_epochs.png")


def figure_curves(results, out_dir: str) -> str | None:
    from smithing.plots import plt, save

    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(11, 4))
    drawn = False
    emax = 1
    for i, v in enumerate(results.variants()):
        runs = _runs(results, v)
        if not runs:
            continue
        for ax, key, k in ((axes[0], "train_loss", 1.0), (axes[1], "valid_error", 100.0)):
            x, m = _epoch_series(runs, key)
            if len(x):
                ls = ":" if v == "relu-N01-noclip" else "-"
                ax.plot(x, k * m, ls, marker="." if len(x) < 3 else None, color=_color(v, i))
                emax = max(emax, len(x))
        all_div = all(r.status == "diverged" for r in runs)
        lab = _label(v) + (" (diverged in epoch 1)" if all_div else "")
        axes[0].plot([], [], color=_color(v, i), ls=":" if all_div else "-", label=lab)
        drawn = True
    if not drawn:
        p.close(fig)
        return None
    axes[0].set_yscale("log")
    axes[0].set_ylabel("training loss (mean over the epoch)")
    axes[1].set_ylabel("validation error (%)")
    for ax in axes:
        _epoch_axis(ax, emax)
        ax.set_xlim(0.9, emax * 1.15)
        ax.set_xlabel("epoch (log)")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle("Learning curves, mean over seeds (diverged runs stop early)")
    fig.tight_layout()
    return save(fig, out_dir, "curves.png")
