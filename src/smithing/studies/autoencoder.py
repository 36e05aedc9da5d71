"""Study ``autoencoder``: filters of an autoencoder at 0 % vs a denoising autoencoder at 30 %.

The Theano tutorial's figure pair (Deep Learning Tutorials, "Denoising Autoencoders (dA)"): a
784-500 autoencoder with tied weights, sigmoid codes and cross-entropy reconstruction, trained
by SGD (lr 0.1, batch 20, 15 epochs) on MNIST, once without corruption and once with 30 %
masking noise (Vincent et al., "Extracting and composing robust features with denoising
autoencoders", ICML 2008). Without corruption the filters are mostly noise-like and local;
with corruption they become larger, stroke-like detectors, because each code must be
predictable from a partially destroyed input.

Runs (kind ``"dae"``, one per corruption level and seed) train a
:class:`~smithing.pretrain.autoencoder.DenoisingAutoencoder` with
:func:`~smithing.pretrain.autoencoder.train_autoencoder` and record per epoch the mean training
objective and the clean reconstruction cross-entropy of the training and validation inputs.
Final numbers: the clean reconstruction loss of the test inputs and the **denoising loss**,
the cross-entropy between clean test inputs and the reconstruction of the same inputs with 30 %
of their pixels masked (one fixed corruption shared by every run). Figures: the first 100
filters of each (seed 0), test digits with their corrupted version and both models'
reconstructions, and the learning curves.

Quick scale: the 8x8 ``digits`` (64-100, 8x8 filters; lr 0.5 and 60 epochs, ~3,600 SGD steps:
1,197 digits give few steps per epoch, and at the tutorial's lr 0.1 for 1,800 steps the filters
are still mostly their random initialization); paper scale: the tutorial's MNIST setup exactly.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from smithing.experiment import Figure, RunResult, Study, Table, Variant, register, rounded

DENOISE_RATE = 0.3  # masking rate of the fixed test corruption behind the denoising loss
DENOISE_SEED = 12345  # generator of that corruption (the same for every run)
N_FILTERS = 100
N_EXAMPLES = 10

BASE = {
    "quick": {"n_hidden": 100, "epochs": 60, "lr": 0.5, "batch_size": 20},
    "paper": {"n_hidden": 500, "epochs": 15, "lr": 0.1, "batch_size": 20},
}


def variants(scale: str) -> list[Variant]:
    base = {**BASE[scale], "corruption": "masking", "n_train": None}
    return [
        Variant("corruption 0%", {**base, "rate": 0.0}, kind="dae"),
        Variant("corruption 30%", {**base, "rate": 0.3}, kind="dae"),
    ]


def run(config: dict, seed: int, device: str, *_, checkpoint=None) -> RunResult:
    """Train one denoising autoencoder, measure its reconstructions; ``checkpoint`` (the
    runner's) makes the training resumable (:func:`~smithing.pretrain.autoencoder.
    train_autoencoder`)."""
    from smithing.data import load
    from smithing.pretrain.autoencoder import DenoisingAutoencoder, corrupt, train_autoencoder

    t0 = time.perf_counter()
    ds = load(config["dataset"], device=device).subset(config.get("n_train"))
    x, xv, xt = (s.x.reshape(len(s), -1) for s in (ds.train, ds.valid, ds.test))
    g = torch.Generator().manual_seed(int(seed))
    dae = DenoisingAutoencoder(x.shape[1], int(config["n_hidden"]), generator=g, device=device)
    hist = train_autoencoder(
        dae,
        x,
        epochs=int(config["epochs"]),
        lr=float(config["lr"]),
        batch_size=int(config["batch_size"]),
        corruption=config.get("corruption", "masking"),
        rate=float(config["rate"]),
        valid_data=xv,
        generator=g,
        checkpoint=checkpoint,
    )
    epochs = [
        {
            "epoch": e + 1,
            "train_objective": hist["loss"][e],
            "train_recon": hist["recon_loss"][e],
            "valid_recon": hist["recon_loss_valid"][e],
        }
        for e in range(len(hist["epoch"]))
    ]
    gd = torch.Generator().manual_seed(DENOISE_SEED)
    xt_noisy = corrupt(xt.cpu(), "masking", DENOISE_RATE, gd).to(xt.device)
    with torch.no_grad():
        final = {
            "train_recon": float(dae.loss(x)),
            "test_recon": float(dae.loss(xt)),
            "test_denoise": float(dae.loss(xt, xt_noisy)),
        }
        k = N_EXAMPLES
        extra = {
            "image_shape": list(ds.meta.get("image_shape") or _square(x.shape[1])),
            "filters": rounded(dae.W[:N_FILTERS], 4),
            "clean": rounded(xt[:k], 3),
            "corrupted": rounded(xt_noisy[:k], 3),
            "recon_corrupted": rounded(dae(xt_noisy[:k]), 3),
            "recon_clean": rounded(dae(xt[:k]), 3),
        }
    ok = all(math.isfinite(v) for v in final.values())
    return RunResult(
        "done" if ok else "diverged",
        final,
        epochs,
        extra,
        "" if ok else "non-finite reconstruction loss",
        time.perf_counter() - t0,
    )


def _square(n: int) -> tuple[int, int]:
    s = int(round(math.sqrt(n)))
    return (s, s) if s * s == n else (1, n)


def tile_images(images, image_shape, cols: int, *, scale: str = "each", pad: int = 1) -> np.ndarray:
    """One mosaic (NaN gaps) of ``images (n, h*w)`` in ``cols`` columns.

    ``scale="each"``: every image mapped to [0, 1] by its own min and max (the Theano tutorial's
    ``tile_raster_images``); ``"none"``: values kept (for pixels already in [0, 1]).
    """
    a = np.asarray(images, dtype=float)
    h, w = image_shape
    n = a.shape[0]
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan)
    for i in range(n):
        img = a[i].reshape(h, w)
        if scale == "each":
            lo, hi = img.min(), img.max()
            img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = img
    return out


def _filters_figure(results, out_dir: str) -> str:
    from smithing.plots import plt, save

    p = plt()
    vs = [v for v in results.variants() if results.first_done(v, "filters")]
    fig, axes = p.subplots(1, max(1, len(vs)), figsize=(4.6 * max(1, len(vs)), 4.9), squeeze=False)
    for ax, v in zip(axes[0], vs):
        r = results.first_done(v, "filters")
        shape = tuple(r.extra["image_shape"])
        cols = math.ceil(math.sqrt(len(r.extra["filters"])))
        ax.imshow(
            tile_images(r.extra["filters"], shape, cols), cmap="gray", interpolation="nearest"
        )
        ax.set_title(f"{v} (seed {r.seed})")
        ax.set_axis_off()
    fig.suptitle("encoder filters W_j (each scaled to its own range)")
    fig.tight_layout()
    return save(fig, out_dir, "filters.png")


def _rows_figure(results, out_dir: str, name: str, title: str, denoise: bool) -> str:
    from smithing.plots import plt, save

    p = plt()
    vs = [v for v in results.variants() if results.first_done(v, "filters")]
    key = "recon_corrupted" if denoise else "recon_clean"
    rows = []
    if vs:
        r0 = results.first_done(vs[0], "filters")
        rows.append(("clean test inputs", r0.extra["clean"]))
        if denoise:
            rows.append((f"{int(100 * DENOISE_RATE)}% masked", r0.extra["corrupted"]))
    for v in vs:
        rows.append((f"reconstruction\n({v})", results.first_done(v, "filters").extra[key]))
    fig, axes = p.subplots(len(rows), 1, figsize=(8, 1.05 * len(rows) + 0.6), squeeze=False)
    for ax, (label, imgs) in zip(axes[:, 0], rows):
        shape = tuple(results.first_done(vs[0], "filters").extra["image_shape"])
        mosaic = tile_images(imgs, shape, len(imgs), scale="none")
        ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, out_dir, name)


def figures(results, out_dir: str) -> list[Figure]:
    from smithing.plots import learning_curves

    out = []
    if any(results.first_done(v, "filters") for v in results.variants()):
        out.append(
            Figure(
                _filters_figure(results, out_dir),
                f"The first {N_FILTERS} filters (rows of W) of the autoencoder without "
                "corruption (left) and of the denoising autoencoder with 30 % masking noise "
                "(right), seed 0: the Theano tutorial's figure pair.",
            )
        )
        out.append(
            Figure(
                _rows_figure(
                    results,
                    out_dir,
                    "reconstructions.png",
                    "reconstructions of clean test inputs",
                    denoise=False,
                ),
                "Test inputs and each model's reconstruction of them (seed 0).",
            )
        )
        out.append(
            Figure(
                _rows_figure(
                    results,
                    out_dir,
                    "denoising.png",
                    "the denoising effect: reconstructions of corrupted test inputs",
                    denoise=True,
                ),
                f"Test inputs, the same inputs with {int(100 * DENOISE_RATE)} % of their pixels "
                "set to 0, and each model's reconstruction of the corrupted inputs (seed 0).",
            )
        )
    out.append(
        Figure(
            learning_curves(
                results,
                ("train_objective", "valid_recon"),
                out_dir,
                "curves.png",
                "reconstruction cross-entropy per example (mean ± std over seeds)",
                logy=(False, False),
                percent=(False, False),
            ),
            "Left: the training objective (reconstruction of corrupted inputs); right: clean "
            "reconstruction cross-entropy of the validation inputs, per epoch.",
        )
    )
    return out


def table(results) -> Table:
    from smithing.experiment import mean_std_ci

    rows = []
    for v in results.variants():
        cells = [v]
        for key in ("train_recon", "test_recon", "test_denoise"):
            m, s, _, n = mean_std_ci(results.finals(v, key))
            cells.append(f"{m:.3f} ± {s:.3f}" if n else "n/a")
        cells.append(len([r for r in results.of(v) if r.status == "done"]))
        rows.append(cells)
    return Table(
        [
            "variant",
            "train recon",
            "test recon (clean)",
            f"test denoising ({int(100 * DENOISE_RATE)}% masked -> clean)",
            "runs",
        ],
        rows,
        "Reconstruction cross-entropy -sum_i [x_i log z_i + (1-x_i) log(1-z_i)] per example "
        "(mean ± std over seeds). The denoising column reconstructs clean test inputs from a "
        "fixed 30 % masking of them: lower is better.",
    )


REFERENCES = """
**Theano Deep Learning Tutorials, "Denoising Autoencoders (dA)"** (lisa-lab, 2010-13): 784-500
dA, tied weights, sigmoid, cross-entropy, SGD lr 0.1, batch 20, 15 epochs on the first 50,000
MNIST training digits, corruption 0 % vs 30 %. The tutorial reports filter images only (its
figures: noise-like filters at 0 %, stroke/edge detectors at 30 %).

Vincent, Larochelle, Bengio & Manzagol, "Extracting and composing robust features with
denoising autoencoders", ICML 2008 (Fig. 3 shows the same qualitative change of filters with the
destruction level).

Departure: masking draws a Bernoulli mask per pixel (the tutorial's), not exactly 30 % of the
pixels per image (the paper's).
"""

STUDY = register(
    Study(
        name="autoencoder",
        metric="test_denoise",
        metric_percent=False,
        description="autoencoder vs denoising autoencoder (30 % masking): filters, "
        "reconstructions, the denoising effect",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 1, "paper": 1},
        run=run,
        references=REFERENCES,
    )
)
