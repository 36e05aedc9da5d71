"""Study ``regularization``: none vs L2 vs L1 vs elastic net vs max-norm vs dropout vs dropout +
max-norm vs DropConnect on the same network.

Quick scale: digits with only the first 500 training examples (``n_train``), a 64-256-256-10
ReLU network (~83k weights, ~170 per training example) trained 60 epochs with momentum SGD:
long enough that the unregularized network fits the training set exactly (0 % training
error) and the difference between training and test error, the generalization gap, is what the
regularizers act on. Strengths were chosen on the validation split in a small sweep (L2
``lam/(2n) sum w^2``, L1 ``lam/n sum |w|`` in the lecture's convention, ``n = 500``; biases
never penalized; max-norm radius on every unit's incoming weight vector, Srivastava et al.
2014, Sec. 5.1; the unconstrained network's largest norm is ~2.6, so c = 1 binds); dropout
drops 50 % of the hidden units but, departing from the paper's recipe, none of the inputs: an
8x8 digit has only 64 pixels, and dropping 20 % of them cost more than it regularized
(measured: 9.8 % vs 5.8 % test error, 2 seeds, 120 epochs); DropConnect drops 50 % of the hidden
layers' weights (Wan et al. 2013).

**DropConnect runs** are of kind ``"dropconnect"`` (this module's :func:`run`, one at a time):
an :class:`~smithing.experiment.mlp.MLPConfig` plus ``dropconnect_options`` for the
:class:`~smithing.nn.dropconnect.DropConnectLinear` layers. Per-epoch validation uses the cheap
``"mean"`` inference ``a(E[u])``; the final train/valid/test metrics use the paper's Gaussian
moment matching (``Z = samples`` draws per unit; the ``"mean"`` ones are kept in
``extra["final_mean_inference"]``). Departure at quick scale: **one mask per mini-batch** (per
layer) instead of the paper's one per example: per-example masks draw
``batch x out x (in + 1)`` numbers per layer, ~100 million per epoch here, too slow for two CPU
cores; paper scale uses per-example masks. So masked, DropConnect learns more slowly and, in
our quick runs, ends *worse* than the unregularized network (~6 % vs ~4.3 % test error; with
p = 0.25 about 4.5 %): the quick variant shows the mechanism, not the paper's gain.

Figures: train / valid / test error per variant (the gap), per-epoch training and validation
error, histograms of the first layer's weights (``log10 |w|``: L1's pile-up of near-zero weights
vs L2's uniform shrinkage), and dropout as model averaging (computed when the figures are drawn,
on digits whatever the scale): the normalized geometric mean over all ``2^n`` thinned networks of
a small net, by brute force (:func:`smithing.nn.dropout.enumerate_subnetworks`), against the
weight-scaled network -- equal when the dropped units feed the softmax directly, a measured gap
when a nonlinear hidden layer follows them.

Paper scale: Srivastava et al. (2014, Table 9; MNIST, 784-1024-1024-2048-10 ReLU) and Wan et
al. (2013; MNIST, 784-800-800-10 ReLU) as variants; see ``references`` for their numbers and
which parts of the recipes are unverified.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from smithing.experiment import Figure, RunResult, Study, Table, Variant, mean_std_ci, register

#: log10 |w| bin edges of the stored first-layer weight histogram (|w| < 1e-6 in the first bin)
LOG_EDGES = np.linspace(-6.0, 1.0, 57)
#: w bin edges (values outside are clipped into the end bins)
W_EDGES = np.linspace(-1.5, 1.5, 61)

#: the model-averaging figure's networks (hidden units under dropout, training epochs)
AVERAGING = {"n_units": 12, "epochs": 60}

# chosen on the validation split (quick scale; see the module docstring)
L2, L1, MAX_NORM = 1.0, 0.1, 1.0


def _quick_variants() -> list[Variant]:
    base = {
        "hidden": [256, 256],
        "activation": "relu",
        "optimizer": "momentum",
        "lr": 0.05,
        "momentum": 0.9,
        "epochs": 60,
        "batch_size": 32,
        "n_train": 500,
        "eval_train": True,
    }
    drop = {"dropout": 0.5}  # no input dropout: see the module docstring
    return [
        Variant("none", base),
        Variant("L2", {**base, "l2": L2}),
        Variant("L1", {**base, "l1": L1}),
        Variant("elastic net", {**base, "l2": L2 / 2, "l1": L1 / 2}),
        Variant("max-norm", {**base, "max_norm": MAX_NORM}),
        Variant("dropout", {**base, **drop}),
        Variant("dropout + max-norm", {**base, **drop, "max_norm": MAX_NORM}),
        Variant(
            "DropConnect",
            {
                **base,
                "dropconnect": 0.5,
                "dropconnect_options": {"per_example": False, "samples": 100},
            },
            kind="dropconnect",
        ),
    ]


def _paper_variants() -> list[Variant]:
    # Srivastava et al. 2014, Table 9 / Appendix B.1 (recipe U: see REFERENCES.md). ~1e6
    # weight updates in the paper; 200 epochs of 500 updates here (1e5).
    t9 = {
        "dataset": "mnist",
        "hidden": [1024, 1024, 2048],
        "activation": "relu",
        "optimizer": "momentum",
        "momentum": 0.95,
        "lr": 0.01,
        "schedule": "exponential",
        "schedule_options": {"gamma": 0.99},
        "epochs": 200,
        "batch_size": 100,
        "eval_train": True,
    }
    # Appendix A's advice (10-100x the learning rate with dropout) failed here: at lr 0.1 with
    # momentum 0.95 "dropout + L2" stayed at chance and "dropout + max-norm" at 29 % train
    # error after 10 epochs (reduced run of 2026-11-25, docs/RESULTS.md); every row uses 0.01
    drop = {"input_dropout": 0.2, "dropout": 0.5}
    # Wan et al. 2013, MNIST without augmentation (recipe U)
    wan = {
        "dataset": "mnist",
        "hidden": [800, 800],
        "activation": "relu",
        "optimizer": "momentum",
        "momentum": 0.9,
        "lr": 0.01,
        "schedule": "exponential",
        "schedule_options": {"gamma": 0.99},
        "epochs": 200,
        "batch_size": 128,
        "eval_train": True,
    }
    return [
        Variant("T9 L2", {**t9, "l2": 5.0}),
        Variant("T9 L2 + L1", {**t9, "l2": 5.0, "l1": 0.5}),
        Variant("T9 max-norm", {**t9, "max_norm": 3.5}),
        Variant("T9 dropout + L2", {**t9, **drop, "l2": 5.0}),
        Variant("T9 dropout + max-norm", {**t9, **drop, "max_norm": 3.5}),
        Variant("Wan no-drop", wan),
        Variant("Wan dropout", {**wan, "dropout": 0.5}),
        Variant(
            "Wan DropConnect",
            {**wan, "dropconnect": 0.5, "dropconnect_options": {"samples": 100}},
            kind="dropconnect",
        ),
    ]


def variants(scale: str) -> list[Variant]:
    return _quick_variants() if scale == "quick" else _paper_variants()


# --------------------------------------------------------------------------- per-run extras
def weight_histograms(w: torch.Tensor) -> dict:
    """Fixed-bin histograms of a weight tensor: ``log10 |w|`` and ``w``, plus summaries.

    Values outside the edges are counted in the end bins; exact zeros are counted apart
    (``zeros``) and left out of the ``log10 |w|`` histogram.
    """
    a = w.detach().double().cpu().reshape(-1).numpy()
    nz = a[a != 0]
    logs = np.clip(np.log10(np.abs(nz)), LOG_EDGES[0], LOG_EDGES[-1])
    return {
        "log_edges": LOG_EDGES.tolist(),
        "log_counts": np.histogram(logs, LOG_EDGES)[0].tolist(),
        "w_edges": W_EDGES.tolist(),
        "w_counts": np.histogram(np.clip(a, W_EDGES[0], W_EDGES[-1]), W_EDGES)[0].tolist(),
        "zeros": int((a == 0).sum()),
        "n": int(a.size),
        "small_fraction": float((np.abs(a) < 1e-3).mean()),  # |w| < 1e-3
        "rms": float(np.sqrt((a**2).mean())),
    }


def extract(model, history, data, cfg) -> dict:
    """First-layer weight histograms and the largest incoming-weight norm of any unit."""
    norms = [float(lin.weight.detach().norm(dim=1).max()) for lin in model.linears]
    return {"w1": weight_histograms(model.linears[0].weight), "max_unit_norm": max(norms)}


# --------------------------------------------------------------------------- DropConnect runs
def run(config: dict, seed: int, device: str = "cpu", *, checkpoint=None) -> RunResult:
    """A ``"dropconnect"`` run: an MLPConfig plus ``dropconnect_options`` (module docstring);
    ``checkpoint`` (the runner's) makes the training resumable."""
    from smithing._registry import check
    from smithing.experiment.mlp import MLPConfig, build_model, load_data, train_one
    from smithing.nn.dropconnect import DROPCONNECT_INFERENCE, DropConnectLinear
    from smithing.train.loop import default_loss, final_metrics

    cfg_d = dict(config)
    opts = dict(cfg_d.pop("dropconnect_options", {}) or {})
    monitor = cfg_d.pop("monitor_inference", "mean")
    cfg = MLPConfig.from_dict(cfg_d)
    check(cfg.dropconnect > 0, "dropconnect", cfg.dropconnect, "a probability in (0, 1)")
    allowed = {"per_example", "samples", "inference", "drop_bias", "max_mask_elements", "masks"}
    unknown = sorted(set(opts) - allowed)
    check(not unknown, "dropconnect_options", unknown, f"keys among {sorted(allowed)}")
    final_inference = DROPCONNECT_INFERENCE.get(opts.pop("inference", "gaussian"))
    DROPCONNECT_INFERENCE.get(monitor)
    t0 = time.perf_counter()
    data = load_data(cfg, device)
    model = build_model(cfg, data).to(device)
    layers = [m for m in model.linears if isinstance(m, DropConnectLinear)]
    for layer in layers:
        for k, v in opts.items():
            setattr(layer, k, v)
        layer.inference = monitor
    # the "mlp" runner's training (dropout/DropConnect masks seeded per seed, penalties)
    _, hist = train_one(cfg, device, data=data, model=model, checkpoint=checkpoint)
    final = hist.final
    if hist.status == "done":
        for layer in layers:
            layer.inference = final_inference
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed + 3_000_017)  # the Gaussian inference draws
            final = final_metrics(model, data.to(device), default_loss(data.task))
    extra = {
        "best_epoch": hist.best_epoch,
        "stop_reason": hist.stop_reason,
        "epochs_run": hist.epochs_run,
        "final_mean_inference": hist.final,
        "inference": {"monitor": monitor, "final": final_inference, **opts},
        **extract(model, hist, data, cfg),
    }
    return RunResult(hist.status, final, hist.epochs, extra, hist.message, time.perf_counter() - t0)


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


def _train_small(model, data, epochs: int, seed: int):
    from smithing.train import fit

    fit(
        model,
        data,
        epochs=epochs,
        lr=0.05,
        batch_size=32,
        optimizer="momentum",
        optimizer_options={"momentum": 0.9},
        seed=seed,
    )
    return model.eval()


def averaging_data(n_units: int = 12, epochs: int = 60, seed: int = 0) -> dict:
    """Dropout as model averaging on digits, by brute force over all ``2^n_units`` masks.

    Two networks trained with dropout 0.5 on ``n_units`` hidden units:

    * ``softmax``: 64-n-10, the dropped units feed the softmax layer directly; the normalized
      geometric mean of the ``2^n`` thinned networks equals the weight-scaled network exactly
      (Srivastava et al. 2014, Sec. 7.5 / Hinton et al. 2012);
    * ``hidden``: 64-n-32-10, a ReLU layer follows the dropped units; the equality is only
      approximate and the gap is measured.

    Returns the probabilities of the test set under the weight-scaled network, the geometric
    and arithmetic means, and the test errors of 1000 random thinned networks.
    """
    from torch import nn

    from smithing.data import load
    from smithing.nn import MLP
    from smithing.nn.dropout import enumerate_subnetworks, mc_predict
    from smithing.train import seed_everything

    data = load("digits")
    x, y = data.test.x, data.test.y
    out = {}
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed)
        nets = {
            "softmax": MLP(64, [n_units], 10, dropout=0.5),
            "hidden": nn.Sequential(
                nn.Linear(64, n_units),
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.Linear(n_units, 32),
                nn.ReLU(),
                nn.Linear(32, 10),
            ),
        }
        for name, net in nets.items():
            _train_small(net, data, epochs, seed)
            avg = enumerate_subnetworks(net, x)
            probs = mc_predict(
                net, x, 1000, generator=torch.Generator().manual_seed(seed), return_samples=True
            )  # (1000, batch, classes)
            errs = (probs.argmax(-1) != y).double().mean(1)  # (1000,)

            def err(p):
                return float((p.argmax(-1) != y).double().mean())

            out[name] = {
                "weight_scaled": avg.weight_scaled,
                "geometric": avg.geometric_mean,
                "arithmetic": avg.arithmetic_mean,
                "gap": avg.gap,
                "arithmetic_gap": avg.arithmetic_gap,
                "n_subnetworks": avg.n_subnetworks,
                "n_units": avg.n_units,
                "errors": {
                    "weight_scaled": err(avg.weight_scaled),
                    "geometric": err(avg.geometric_mean),
                    "arithmetic": err(avg.arithmetic_mean),
                },
                "single_errors": errs.numpy(),
            }
    return out


def averaging_figure(out_dir: str) -> tuple[str, str]:
    from smithing.plots import plt, save

    res = averaging_data(**AVERAGING)
    p = plt()
    fig, axes = p.subplots(1, 3, figsize=(14, 4.3))
    titles = {
        "softmax": "dropped units feed the softmax",
        "hidden": "a ReLU layer follows the dropped units",
    }
    for ax, name in zip(axes[:2], ("softmax", "hidden")):
        r = res[name]
        ws = r["weight_scaled"].double().clamp_min(1e-12).log10().reshape(-1).numpy()
        ge = r["geometric"].double().clamp_min(1e-12).log10().reshape(-1).numpy()
        ar = r["arithmetic"].double().clamp_min(1e-12).log10().reshape(-1).numpy()
        ax.scatter(ws, ar, s=4, alpha=0.35, color="tab:orange", label="arithmetic mean")
        ax.scatter(ws, ge, s=4, alpha=0.6, color="tab:blue", label="normalized geometric mean")
        lo = min(ws.min(), ge.min(), ar.min())
        ax.plot([lo, 0], [lo, 0], color="k", lw=0.8)
        ax.set_xlabel("log10 p, weight-scaled network (p clipped at 1e-12)")
        ax.set_ylabel(f"log10 p, average over all {r['n_subnetworks']} thinned nets")
        ax.set_title(
            f"{titles[name]}\nmax |geometric − weight-scaled| = {r['gap']:.1e}", fontsize=9.5
        )
        ax.legend(fontsize=8, markerscale=3, loc="upper left")
        ax.grid(alpha=0.3)
    ax = axes[2]
    for name, color in (("softmax", "tab:green"), ("hidden", "tab:purple")):
        r = res[name]
        ax.hist(
            100 * r["single_errors"],
            bins=30,
            alpha=0.45,
            color=color,
            label=f"{name}: one random thinned net",
        )
        for key, style in (("weight_scaled", "-"), ("geometric", ":")):
            ax.axvline(100 * r["errors"][key], color=color, ls=style, lw=1.6)
    ax.plot([], [], "k-", label="weight-scaled net")
    ax.plot([], [], "k:", label="geometric mean of all")
    ax.set_xlabel("test error (%)")
    ax.set_ylabel("thinned networks (of 1000 drawn)")
    ax.set_title("each thinned network vs their average", fontsize=9.5)
    ax.legend(fontsize=7.5)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    s, h = res["softmax"], res["hidden"]
    se, he = s["errors"], h["errors"]
    caption = (
        f"Dropout as model averaging (digits, dropout 0.5 on {s['n_units']} hidden units; all "
        f"{s['n_subnetworks']} thinned networks enumerated for each of the "
        f"{len(s['weight_scaled'])} test digits; every class probability is one point). Left: "
        "the dropped units feed the softmax directly, and the normalized geometric mean of the "
        "thinned networks equals the weight-scaled network (max difference "
        f"{s['gap']:.1e}: rounding). Middle: a ReLU layer follows the dropped units and the "
        f"equality is only an approximation (max difference {h['gap']:.2f}; test error "
        f"{100 * he['weight_scaled']:.1f} % weight-scaled vs {100 * he['geometric']:.1f} % "
        "geometric mean). The arithmetic mean (orange) is a different average. Right: the test "
        "errors of 1000 random single thinned networks against the weight-scaled networks "
        f"({100 * se['weight_scaled']:.1f} % and {100 * he['weight_scaled']:.1f} %)."
    )
    return save(fig, out_dir, "averaging.png"), caption


def figures(results, out_dir: str) -> list[Figure]:
    out = [
        Figure(
            gap_figure(results, out_dir),
            "Final training, validation and test error per variant (mean ± sample std over "
            "seeds); the label above each group is the generalization gap, test − train error "
            "(points).",
        ),
        Figure(
            curves_figure(results, out_dir),
            "Training error (eval mode) and validation error per epoch. DropConnect's curves "
            "use the cheap mean inference; its final numbers use Gaussian moment matching.",
        ),
    ]
    w = weights_figure(results, out_dir)
    if w is not None:
        out.append(
            Figure(
                w,
                "Histograms of log10 |w| of the first layer's weights, all seeds pooled, each "
                "against the unregularized network (grey). L1 drives many weights to (near) zero "
                "-- the subgradient leaves them dithering around 0, not at exactly 0 -- while L2 "
                "shrinks all of them; the weights from digits' always-blank pixels get no data "
                "gradient and keep their initial values unless a penalty decays them.",
            )
        )
    path, caption = averaging_figure(out_dir)
    out.append(Figure(path, caption))
    return out


def table(results) -> Table:
    rows = []
    for v in results.variants():
        runs = [r for r in results.of(v) if r.status == "done"]
        cells = [v]
        for key in ("train_error", "valid_error", "test_error"):
            m, s = _finals(results, v, key)
            cells.append(f"{m:.2f} ± {s:.2f}" if math.isfinite(m) else "n/a")
        gaps = [
            100 * (r.final["test_error"] - r.final["train_error"])
            for r in runs
            if math.isfinite(r.final.get("test_error", math.nan))
        ]
        mg, sg, _, n = mean_std_ci(gaps)
        cells.append(f"{mg:.2f} ± {sg:.2f}" if n else "n/a")
        small = [100 * r.extra["w1"]["small_fraction"] for r in runs if "w1" in r.extra]
        cells.append(f"{np.mean(small):.1f}" if small else "n/a")
        cells.append(len(runs))
        rows.append(cells)
    return Table(
        [
            "variant",
            "train error (%)",
            "valid error (%)",
            "test error (%)",
            "gap test − train",
            "layer-1 |w| < 1e-3 (%)",
            "runs",
        ],
        rows,
        "Final errors, mean ± sample std over seeds.",
    )


REFERENCES = """
Srivastava et al. (2014), JMLR 15, Table 9: MNIST, 784-1024-1024-2048-10 ReLU (C); our paper
scale variants `T9 ...`. Recipe (U, from the paper's Appendix B as summarized in REFERENCES.md):
keep 0.8 of the inputs and 0.5 of the hidden units (B.1, read in the paper), a final momentum
of 0.95 (B.1; constant here, no ramp), max-norm c = 2 in all layers for MNIST (B.1; 3.5 here,
Appendix A's typical 3-4: a departure), ~1e6 weight updates (B.1; 1e5 here). B.1 gives no
learning rate: Appendix A advises 10-100x larger rates with dropout, which diverged in our
reduced run (lr 0.1 with momentum 0.95), so every row uses lr 0.01, decayed exponentially
(0.99 per epoch). The L2 and L1 strengths are
ours (lam = 5 and 0.5 with n = 50,000, i.e. 1e-4 and 1e-5 per example).

| Table 9 method | test error (%) |
|---|---|
| L2 | 1.62 |
| L2 + L1 | 1.60 |
| L2 + KL sparsity | 1.55 |
| max-norm | 1.35 |
| dropout + L2 | 1.25 |
| dropout + max-norm | 1.05 |

Wan et al. (2013), ICML: MNIST, 784-800-800-10 ReLU, no augmentation, mean of 5 runs (C); our
variants `Wan ...`. DropConnect p = 0.5 with per-example masks and Gaussian moment-matching
inference (Z = 100 here; the paper's Z is U); momentum, learning rate, schedule and epochs are
U (ours: momentum 0.9, lr 0.01 decayed 0.99 per epoch, batch 128, 200 epochs).

| Wan et al. 2013 | test error (%) |
|---|---|
| no drop | 1.62 ± 0.037 |
| dropout | 1.28 ± 0.040 |
| DropConnect | 1.20 ± 0.034 |
| 5-network vote (DropConnect) | 1.12 |

Quick scale (digits, 500 training examples) has no published counterpart: expect the
regularizers to shrink the gap between training error (0 %) and test error, with differences
of a fraction of a point between them -- a single test example is 0.33 %.
"""


STUDY = register(
    Study(
        name="regularization",
        mlp_keys=True,
        description="none vs L2 vs L1 vs elastic net vs max-norm vs dropout (+ max-norm) vs "
        "DropConnect: the generalization gap, weight histograms, dropout as model averaging",
        variants=variants,
        figures=figures,
        table=table,
        run=run,
        extract=extract,
        seeds={"quick": 3, "paper": 5},
        references=REFERENCES,
    )
)
