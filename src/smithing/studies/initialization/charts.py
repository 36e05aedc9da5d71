"""The initialization study's MLP figures: signal variance per layer at initialization, learning
curves and final test errors."""

from __future__ import annotations

import math

import numpy as np

from smithing._optional import require
from smithing.studies.initialization.configs import (
    VARIANCE_BATCH,
)

__all__ = [
    "figure_curves",
    "figure_final",
    "figure_variance",
    "init_signals",
    "mlp_results",
]


def _is_linear(r) -> bool:
    return "depth" in r.config


def mlp_results(results):
    """The ``"mlp"`` runs only (the deep linear runs removed)."""
    from smithing.experiment import StudyResults

    return StudyResults(results.study, [r for r in results.runs if not _is_linear(r)], results.meta)


def _style(i: int, name: str) -> dict:
    matplotlib = require("matplotlib", "the initialization study's figures")

    colors = matplotlib.colormaps["tab20"].colors
    ls = "--" if "normal" in name or name in ("sparse",) else "-"
    return {"color": colors[(2 * i) % 20 if i < 10 else (2 * i + 1) % 20], "ls": ls}


def init_signals(results, device: str = "cpu") -> dict[str, dict[str, np.ndarray]]:
    """Per variant: mean over seeds of the per-layer activation and gradient variances at init.

    Rebuilds each stored "mlp" configuration at initialization (``build_model``) and measures on
    the first ``VARIANCE_BATCH`` training examples (see
    :func:`smithing.train.gradient_flow.signal_variances`).
    """
    from smithing.experiment.mlp import MLPConfig, build_model, load_data
    from smithing.train import signal_variances

    out: dict[str, dict[str, np.ndarray]] = {}
    data_cache: dict = {}
    for v in results.variants():
        acts, grads = [], []
        for r in results.of(v):
            if _is_linear(r):
                continue
            cfg = MLPConfig.from_dict(r.config)
            key = (cfg.dataset, cfg.n_train)
            if key not in data_cache:
                data_cache[key] = load_data(cfg, device)
            data = data_cache[key]
            model = build_model(cfg, data).to(device)
            s = signal_variances(
                model, data.train.x[:VARIANCE_BATCH], data.train.y[:VARIANCE_BATCH]
            )
            acts.append(s["act_var"])
            grads.append(s["grad_var"])
        if acts:
            out[v] = {
                "act_var": np.exp(np.log(np.asarray(acts)).mean(0)),
                "grad_var": np.exp(np.log(np.asarray(grads)).mean(0)),
            }
    return out


def figure_variance(results, out_dir: str) -> str | None:
    from smithing.plots import plt, save

    sig = init_signals(results)
    if not sig:
        return None
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(12, 4.6))
    for i, (v, s) in enumerate(sig.items()):
        st = _style(i, v)
        la = np.arange(1, len(s["act_var"]) + 1)
        axes[0].semilogy(la, s["act_var"], marker="o", ms=3, label=v, **st)
        lg = np.arange(1, len(s["grad_var"]) + 1)
        axes[1].semilogy(lg, s["grad_var"], marker="o", ms=3, label=v, **st)
    axes[0].set_xlabel("hidden layer l")
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_ylabel("Var(h_l) at initialization")
    axes[0].set_title("forward: activation variance")
    axes[1].set_xlabel("layer l (last = output logits)")
    axes[1].set_ylabel("Var(dL/dz_l) at initialization (per example)")
    axes[1].set_title("backward: back-propagated gradient variance")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(
        f"Signal propagation at initialization (mean over seeds, {VARIANCE_BATCH} examples)"
    )
    fig.tight_layout()
    return save(fig, out_dir, "variance.png")


def figure_curves(mres, out_dir: str) -> str | None:
    from smithing.plots import mean_band, plt, save

    if not mres.runs:
        return None
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(12, 4.2))
    for i, v in enumerate(mres.variants()):
        st = _style(i, v)
        for ax, key, k in ((axes[0], "train_loss", 1.0), (axes[1], "valid_error", 100.0)):
            x, m, sd = mean_band(mres.curves(v, key))
            if not len(x):
                continue
            ax.plot(x, k * m, label=v if ax is axes[0] else None, **st)
            lo = np.maximum(k * (m - sd), k * m / 10)  # keep the band on the log axis
            ax.fill_between(x, lo, k * (m + sd), color=st["color"], alpha=0.15)
    axes[0].set_ylabel("training loss")
    axes[1].set_ylabel("validation error (%)")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3, which="both")
    fig.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.suptitle("Initializers on the same MLP: mean over seeds, band = ±1 std")
    fig.tight_layout()
    return save(fig, out_dir, "curves.png")


def figure_final(mres, out_dir: str) -> str | None:
    from smithing.plots import plt, save

    vs = [v for v in mres.variants() if mres.finals(v, "test_error")]
    if not vs:
        return None
    p = plt()
    fig, ax = p.subplots(figsize=(max(6.0, 0.9 * len(vs)), 3.8))
    for i, v in enumerate(vs):
        ys = [100 * e for e in mres.finals(v, "test_error") if math.isfinite(e)]
        st = _style(i, v)
        ax.scatter([i] * len(ys), ys, color=st["color"], s=18, zorder=3)
        if ys:
            ax.hlines(float(np.mean(ys)), i - 0.3, i + 0.3, color="k", lw=1.5, zorder=4)
    ax.set_xticks(range(len(vs)), vs, rotation=25, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("test error (%, log)")
    ax.set_title("Final test error: one dot per seed, bar = mean")
    ax.grid(alpha=0.3, which="both", axis="y")
    fig.tight_layout()
    return save(fig, out_dir, "final.png")
