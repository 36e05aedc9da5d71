"""The dbn study's figures: fine-tuning curves, final test errors, pretraining curves, filters
and samples."""

from __future__ import annotations

import numpy as np

from smithing.experiment import (
    Figure,
)
from smithing.plots import image_panels, tile
from smithing.studies.dbn.configs import (
    DEFAULTS,
)

__all__ = [
    "figures",
]


def _pretrain_figure(results, out_dir: str) -> str | None:
    from smithing.plots import mean_band, plt, save

    runs = [r for r in results.of("dbn-pretrained") if r.extra.get("pretrain")]
    if not runs:
        return None
    p = plt()
    n_layers = len(runs[0].extra["pretrain"])
    fig, axes = p.subplots(1, 2, figsize=(10.4, 3.8))
    sizes = [len(runs[0].extra["filters_pretrained"][0])] + list(runs[0].config["hidden"])
    for i in range(n_layers):
        label = f"RBM {i + 1}: {sizes[i]}-{sizes[i + 1]}"
        for ax, key in zip(axes, ("recon_error", "free_energy_gap")):
            x, m, s = mean_band([r.extra["pretrain"][i][key] for r in runs])
            (line,) = ax.plot(x, m, label=label)
            ax.fill_between(x, m - s, m + s, color=line.get_color(), alpha=0.2)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("reconstruction error")
    axes[1].set_ylabel("free energy: mean F(valid) − mean F(train)")
    for ax in axes:
        ax.set_xlabel("pretraining epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out_dir, "pretraining.png")


def figures(results, out_dir: str) -> list[Figure]:
    from smithing.plots import final_box, learning_curves

    out = [
        Figure(
            learning_curves(
                results,
                ("train_loss", "valid_error"),
                out_dir,
                "curves.png",
                "dbn: fine-tuning, mean over seeds, band = ±1 std",
            ),
            "Fine-tuning: training loss (log scale) and validation error per epoch, pretrained "
            "DBN vs the same net from a random initialization (runs end at different epochs: "
            "early stopping).",
        ),
        Figure(
            final_box(results, "test_error", out_dir, "final.png"),
            "Test error per seed of the early-stopped networks (box: quartiles; triangle: mean).",
        ),
    ]
    pre = _pretrain_figure(results, out_dir)
    if pre:
        out.append(
            Figure(
                pre,
                "Greedy pretraining, one curve per RBM (mean ± std over seeds): reconstruction "
                "error and the free-energy gap between validation and training inputs.",
            )
        )
    panels = []
    r = results.first_done("dbn-pretrained", "filters_pretrained")
    shape = None
    if r is not None:
        shape = tuple(r.extra["image_shape"])
        W = np.asarray(r.extra["filters_pretrained"])
        panels.append((f"RBM 1 after pretraining (seed {r.seed})", tile(W, shape, symmetric=True)))
    for v in results.variants():
        r = results.first_done(v, "filters_finetuned")
        if r is None:
            continue
        shape = tuple(r.extra["image_shape"])
        W = np.asarray(r.extra["filters_finetuned"])
        panels.append((f"{v} after fine-tuning (seed {r.seed})", tile(W, shape, symmetric=True)))
    if panels:
        out.append(
            Figure(
                image_panels(panels, out_dir, "filters.png"),
                "First-layer filters (incoming weights of the first hidden units), each scaled "
                "to its own ±max|w| (grey = 0).",
            )
        )
    r = results.first_done("dbn-pretrained", "samples")
    if r is not None:
        S = np.asarray(r.extra["samples"])
        steps = r.config.get("sample_steps", DEFAULTS["sample_steps"])
        panel = tile(S, tuple(r.extra["image_shape"]))
        out.append(
            Figure(
                image_panels([(f"DBN samples (seed {r.seed})", panel)], out_dir, "samples.png"),
                f"Samples of the pretrained DBN (before fine-tuning): {steps} Gibbs sweeps in the "
                "top RBM from random states, then one down pass (intermediate layers sampled, "
                "the image shown as E[v | h1]).",
            )
        )
    return out
