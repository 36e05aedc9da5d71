"""The rbm study's figures: learning curves, log-likelihoods and AIS error, filters, samples."""

from __future__ import annotations

import math

import numpy as np

from smithing.experiment import (
    Figure,
)
from smithing.plots import image_panels, tile

__all__ = [
    "figures",
]


def _loglik_figure(results, out_dir: str) -> str:
    from smithing.plots import plt, save

    p = plt()
    vs = results.variants()
    has_exact = any("exact_log_z" in r.final for r in results.runs)
    fig, axes = p.subplots(1, 2 if has_exact else 1, figsize=(11 if has_exact else 5.5, 3.8))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    for i, v in enumerate(vs):
        runs = [r for r in results.of(v) if r.status == "done"]
        xs = i + np.linspace(-0.15, 0.15, max(len(runs), 1))[: len(runs)]
        for xj, r in zip(xs, runs):
            f = r.final
            lo = f["test_log_prob"] - f["test_log_prob_lo"]
            hi = f["test_log_prob_hi"] - f["test_log_prob"]
            hi = hi if math.isfinite(hi) else 0.0
            ax.errorbar(xj, f["test_log_prob"], yerr=[[lo], [hi]], fmt="o", color="C0", ms=4)
            if "test_log_prob_exact" in f:
                ax.plot(xj + 0.05, f["test_log_prob_exact"], "x", color="C3", ms=6)
    ax.plot([], [], "o", color="C0", label="AIS (±3 std of log Z)")
    if has_exact:
        ax.plot([], [], "x", color="C3", label="exact log Z")
    ax.set_xticks(range(len(vs)), vs)
    ax.set_ylabel("average test log-probability (nats)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    if has_exact:
        ax = axes[1]
        for i, v in enumerate(vs):
            runs = [r for r in results.of(v) if r.status == "done" and "exact_log_z" in r.final]
            xs = i + np.linspace(-0.15, 0.15, max(len(runs), 1))[: len(runs)]
            for xj, r in zip(xs, runs):
                f = r.final
                err = f["log_z"] - f["exact_log_z"]
                lo = f["log_z"] - f["log_z_lo"] if math.isfinite(f["log_z_lo"]) else 0.0
                hi = f["log_z_hi"] - f["log_z"]
                ax.errorbar(xj, err, yerr=[[lo], [hi]], fmt="o", color="C2", ms=4)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(range(len(vs)), vs)
        ax.set_ylabel("AIS log Z − exact log Z (nats)")
        ax.set_title("AIS error and its ±3 std interval", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return save(fig, out_dir, "loglik.png")


def figures(results, out_dir: str) -> list[Figure]:
    from smithing.plots import learning_curves

    out = [
        Figure(
            learning_curves(
                results,
                ("recon_error", "pseudo_likelihood", "free_energy_gap"),
                out_dir,
                "curves.png",
                "rbm: mean over seeds, band = ±1 std",
                logy=(True, False, False),
                percent=(False, False, False),
            ),
            "Per epoch: reconstruction error (mean squared, log scale), stochastic "
            "pseudo-log-likelihood of 1,000 training examples (scikit-learn's estimator) and "
            "the free-energy gap mean F(valid) − mean F(train) (growing = overfitting).",
        ),
        Figure(
            _loglik_figure(results, out_dir),
            "Average test log-probability per run: AIS estimate with the ±3 std interval of its "
            "log Z (dots) and, where the RBM is small enough to enumerate, with the exact log Z "
            "(crosses); right: the AIS error in log Z against the exact value.",
        ),
    ]
    filt, samp = [], []
    for v in results.variants():
        r = results.first_done(v, "W")
        if r is None:
            continue
        shape = tuple(r.extra["image_shape"])
        W = np.asarray(r.extra["W"])  # (n_visible, n_filters)
        filt.append((f"{v} (seed {r.seed})", tile(W.T, shape, symmetric=True)))
        S = np.asarray(r.extra["samples"])  # (snapshots, chains, n_visible)
        n_shots, n_chains = S.shape[0], S.shape[1]
        grid = S.reshape(n_shots * n_chains, -1)  # row = snapshot, column = chain
        steps = ", ".join(str(s) for s in r.extra["sample_steps"])
        samp.append((f"{v}: rows after {steps} sweeps", tile(grid, shape, n_chains)))
    if filt:
        out.append(
            Figure(
                image_panels(filt, out_dir, "filters.png"),
                "Filters W[:, j] of the first hidden units (seed 0 of each variant), each scaled "
                "to its own ±max|w| (grey = 0).",
            )
        )
        out.append(
            Figure(
                image_panels(samp, out_dir, "samples.png"),
                "Samples: each column is one Gibbs chain started from uniform random states, "
                "shown as E[v | h] after the numbers of sweeps in the panel title (top to "
                "bottom).",
            )
        )
    return out
