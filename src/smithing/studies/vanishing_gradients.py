"""Study ``vanishing-gradients``: why deep sigmoid nets with small weights do not learn.

Back-propagation multiplies the error signal, layer by layer, by the transposed weights and the
activation's derivative: for a hidden layer l with pre-activation ``z_l = W_l h_{l-1} + b_l``
and ``h_l = f(z_l)``,

    dL/dz_l = f'(z_l) * (W_{l+1}^T dL/dz_{l+1}),      dL/dW_l = dL/dz_l h_{l-1}^T.

With ``n`` units per layer and i.i.d. weights of variance ``Var(W)``, the signal's scale changes
by about ``sqrt(n Var(W)) * E|f'|`` per layer. The logistic sigmoid has ``sigma' <= 1/4``
(``sigma'(0) = 1/4``), so with a small fixed-scale init such as ``U(-0.05, 0.05)`` (``n Var(W) =
0.083`` for n = 100) the factor is about 0.07 and the first layer of a 6-hidden-layer net
receives a gradient some 10^7 times smaller than the last (Hochreiter 1991; Bengio, Simard &
Frasconi, "Learning long-term dependencies with gradient descent is difficult", IEEE TNN 1994).
Glorot & Bengio ("Understanding the difficulty of training deep feedforward neural networks",
AISTATS 2010) chose ``Var(W) = 2 / (fan_in + fan_out)`` to keep both the forward activations and
the back-propagated gradients at the same scale in every layer for tanh units (``f'(0) = 1``); He
et al. ("Delving deep into rectifiers", ICCV 2015) ``Var(W) = 2 / fan_in`` for ReLU, whose
derivative is 1 on half of the inputs. The Theano tutorials multiply Glorot's bound by 4 for
sigmoid layers (undoing the 1/4). Too large a scale makes the signal *grow* instead: with
``W ~ N(0, 1)`` and ReLU the gradient norm is ~10^6 at initialization and SGD diverges at once,
unless the gradient norm is clipped (Pascanu, Mikolov & Bengio, "On the difficulty of training
recurrent neural networks", ICML 2013, Algorithm 1).

Variants (all the same MLP, optimizer and data order; see :func:`variants`):

* ``sigmoid-small``: sigmoid + ``U(-0.05, 0.05)``, trained ``LONG`` (10) times longer than the
  others: "or just wait longer?";
* ``sigmoid-glorot-x4``: sigmoid + Glorot uniform with the Theano gain 4;
* ``tanh-glorot``: tanh + Glorot "normalized" init (gain 1, as in the paper);
* ``relu-he``: ReLU + He normal (gain sqrt 2);
* ``relu-N01-noclip`` / ``relu-N01-clip``: the exploding case, ReLU + ``N(0, 1)``, trained
  without and with global gradient-norm clipping (``clip_norm=1``).

Each run is the custom kind :data:`KIND` (:func:`run`): an
:class:`~smithing.experiment.mlp.MLPConfig`
trained by :func:`smithing.train.fit` with a callback that measures, at the end of every epoch
and on a fixed batch of ``DIAG_BATCH`` training examples, the gradient norm of every weight
matrix and the mean / std / saturation of every hidden layer
(:func:`smithing.train.gradient_flow.gradient_flow`). The
same measurements at initialization, histograms of activations (Glorot & Bengio's figure 6) and
of ``log10 |dL/dz|`` (their figure 7, on a log axis) at init and after training, and the
per-step training losses of the first ``STEP_LOSSES`` steps go into the run's extras.

Scales. quick: ``digits``, 6 hidden layers x 64 units, SGD with momentum 0.9, lr 0.04,
mini-batches of 64, 15 epochs (150 for ``sigmoid-small``), 2 seeds. paper: MNIST, 5 hidden
layers x 1000 units (Glorot & Bengio's depth and width), mini-batches of 10 as in their
experiments, lr 0.005 with momentum 0.9, 10 epochs (100 for ``sigmoid-small``); Glorot & Bengio
used plain SGD with a learning rate tuned per model, which we do not (one setting for all).
The paper-scale settings were not run when this study was written.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from smithing.experiment import (
    Figure,
    RunResult,
    Study,
    Table,
    Variant,
    mean_std_ci,
    register,
)
from smithing.train.gradient_flow import gradient_flow

KIND = "gradient-flow"
LONG = 10  # "or just wait longer?": sigmoid-small trains LONG times the others' epochs
DIAG_BATCH = 512  # fixed training examples the per-epoch diagnostics are measured on
BINS = 40  # activation histogram bins
STEP_LOSSES = 300  # per-step training losses kept (the first steps of a run)
#: common edges of the log10 |dL/dz| histograms (per-example gradients), clipped into range
LOG_GRAD_EDGES = np.linspace(-14.0, 6.0, 81)

#: name -> (legend label, configuration)
VARIANTS: dict[str, tuple[str, dict]] = {
    "sigmoid-small": (
        "sigmoid, U(±0.05)",
        {
            "activation": "sigmoid",
            "init": "uniform",
            "init_options": {"a": 0.05},
            "epochs_factor": LONG,
        },
    ),
    "sigmoid-glorot-x4": (
        "sigmoid, Glorot ×4",
        {"activation": "sigmoid", "init": "glorot_uniform", "init_options": {"gain": 4.0}},
    ),
    "tanh-glorot": (
        "tanh, Glorot",
        {"activation": "tanh", "init": "glorot_uniform", "init_options": {"gain": "paper"}},
    ),
    "relu-he": (
        "ReLU, He",
        {"activation": "relu", "init": "he_normal", "init_options": {"gain": "paper"}},
    ),
    "relu-N01-noclip": (
        "ReLU, N(0,1), no clipping",
        {"activation": "relu", "init": "normal", "init_options": {"sigma": 1.0}},
    ),
    "relu-N01-clip": (
        "ReLU, N(0,1), clip 1",
        {
            "activation": "relu",
            "init": "normal",
            "init_options": {"sigma": 1.0},
            "clip_norm": 1.0,
        },
    ),
}
MAIN = ("sigmoid-small", "sigmoid-glorot-x4", "tanh-glorot", "relu-he")
EXPLODING = ("relu-N01-noclip", "relu-N01-clip")
GOOD = ("sigmoid-glorot-x4", "tanh-glorot", "relu-he")
COLORS = {
    "sigmoid-small": "tab:red",
    "sigmoid-glorot-x4": "tab:orange",
    "tanh-glorot": "tab:blue",
    "relu-he": "tab:green",
    "relu-N01-noclip": "tab:purple",
    "relu-N01-clip": "tab:brown",
}
OWN_KEYS = ("epochs_factor",)  # configuration keys of this run kind that MLPConfig lacks


def variants(scale: str) -> list[Variant]:
    if scale == "quick":
        base = {
            "hidden": [64] * 6,
            "optimizer": "momentum",
            "lr": 0.04,
            "epochs": 15,
            "batch_size": 64,
        }
    else:
        base = {
            "hidden": [1000] * 5,
            "optimizer": "momentum",
            "lr": 0.005,
            "epochs": 10,
            "batch_size": 10,
        }
    return [Variant(name, {**base, **cfg}, KIND) for name, (_, cfg) in VARIANTS.items()]


# ----------------------------------------------------------------------------- measurements


def diagnose(model: nn.Module, x: torch.Tensor, y: torch.Tensor, histograms: bool = False) -> dict:
    """Per-layer gradient-flow measurements of an MLP on the batch ``(x, y)``.

    :func:`smithing.train.gradient_flow.gradient_flow` (``grad_norm``, ``act_mean``,
    ``act_std``, ``saturated`` or ``zero``) with, when ``histograms``, the activation
    histograms on :data:`BINS` bins and the ``log10 |dL/dz|`` histograms on
    :data:`LOG_GRAD_EDGES` (``act_hist``, ``log_grad_hist``, ``grad_zero``).
    """
    return gradient_flow(
        model,
        x,
        y,
        bins=BINS if histograms else None,
        log_grad_edges=LOG_GRAD_EDGES if histograms else None,
    )


def _flat(d: dict) -> dict:
    """Per-layer lists as flat ``key_l`` scalars (1-based layer index) for the epoch record."""
    out = {}
    for key in ("grad_norm", "act_mean", "act_std", "saturated", "zero"):
        for i, v in enumerate(d.get(key, []), start=1):
            out[f"{key}_{i}"] = float(v)
    g = d["grad_norm"]
    out["grad_norm_total"] = float(math.sqrt(sum(v * v for v in g)))
    return out


def _ratio(norms: list[float]) -> float:
    return norms[0] / norms[-1] if norms and norms[-1] > 0 else math.nan


# ----------------------------------------------------------------------------- the run kind


def run(config: dict, seed: int, device: str = "cpu", *, checkpoint=None) -> RunResult:
    """Train one MLP configuration, recording per-layer gradient flow every epoch.

    ``config`` is an :class:`~smithing.experiment.mlp.MLPConfig` dictionary plus ``epochs_factor``
    (the run trains ``epochs * epochs_factor`` epochs). The model, data and data order are
    exactly those of an ``"mlp"`` run of the same configuration (``build_model``, ``load_data``,
    ``fit`` seeded as :func:`~smithing.experiment.mlp.train_one` does). Each epoch record gets
    ``grad_norm_<l>`` (weight-gradient norm of Linear layer l, 1-based), ``grad_norm_total``,
    ``act_mean_<l>``, ``act_std_<l>`` and ``saturated_<l>`` or ``zero_<l>`` of hidden layer l,
    measured on the first ``DIAG_BATCH`` training examples after the epoch. Extras: ``init``
    (the same at initialization, with histograms), ``trained`` (after training, with
    histograms; absent when the run diverged), ``grad_ratio_init`` (first/last layer's gradient
    norm at init), ``step_loss`` (training loss of the first ``STEP_LOSSES`` steps),
    ``log_grad_edges``, ``epochs_run``, ``stop_reason``. ``checkpoint`` (the runner's) makes
    the training resumable; the step losses are carried in it (``Checkpointer.carry``).
    """
    from smithing.experiment.mlp import MLPConfig, build_model, load_data, train_one
    from smithing.train.loop import default_loss

    t0 = time.perf_counter()
    config = dict(config)
    factor = int(config.pop("epochs_factor", 1))
    cfg = MLPConfig.from_dict(config)
    cfg = replace(cfg, epochs=cfg.epochs * factor)
    data = load_data(cfg, device)
    model = build_model(cfg, data).to(device)
    xb, yb = data.train.x[:DIAG_BATCH], data.train.y[:DIAG_BATCH]  # (B, inputs), (B,)
    init = diagnose(model, xb, yb, histograms=True)

    step_loss: list[float] = []
    base_loss = default_loss(data.task)

    def loss_fn(out, y):
        loss = base_loss(out, y)
        if torch.is_grad_enabled() and len(step_loss) < STEP_LOSSES:  # training steps only
            step_loss.append(float(loss.detach()))
        return loss

    if checkpoint is not None:  # collected while training: not replayed by a resumed fit
        checkpoint.carry("step_loss", lambda: list(step_loss), step_loss.extend)

    def record(epoch, rec, m):
        rec.update(_flat(diagnose(m, xb, yb)))
        return False

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # divergence is recorded in the status, not warned
        _, hist = train_one(
            cfg,
            device,
            data=data,
            model=model,
            callbacks=[record],
            loss=loss_fn,
            checkpoint=checkpoint,
        )
    extra = {
        "init": init,
        "grad_ratio_init": _ratio(init["grad_norm"]),
        "step_loss": step_loss,
        "log_grad_edges": LOG_GRAD_EDGES.tolist(),
        "epochs_run": hist.epochs_run,
        "stop_reason": hist.stop_reason,
        "best_epoch": hist.best_epoch,
    }
    if hist.status == "done":
        extra["trained"] = diagnose(model, xb, yb, histograms=True)
    return RunResult(
        hist.status, hist.final, hist.epochs, extra, hist.message, time.perf_counter() - t0
    )


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


REFERENCES = """
Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural networks",
AISTATS 2010. From the abstract (read in a copy of the paper): the logistic sigmoid is unsuited
to deep nets with random initialization because its mean value can drive especially the top
hidden layer into saturation; saturated units move out of saturation by themselves, but
slowly (the plateaus); training may be harder when the singular values of each layer's
Jacobian are far from 1, which motivates the normalized initialization. From secondary
summaries, not checked in the paper (U): with the standard init the back-propagated gradients
shrink towards the lower layers and keep their scale with the normalized init (their figure 7);
tanh nets show no top-layer saturation but a saturation that starts in layer 1 and moves up.
Their MNIST test errors (5 x 1000 units) are in the initialization study (unverified).
Bengio, Simard & Frasconi (IEEE TNN 1994) and Hochreiter (diploma thesis 1991): the
exponential decay of back-propagated errors with depth (in time, for recurrent nets).
Pascanu, Mikolov & Bengio (ICML 2013): rescale the gradient when its norm exceeds a threshold.
"""

STUDY = register(
    Study(
        name="vanishing-gradients",
        mlp_keys=True,
        description="per-layer gradient norms and activations of deep sigmoid / tanh / ReLU "
        "nets at init and through training; exploding gradients and clipping; "
        "or just wait longer?",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 2, "paper": 3},
        run=run,
        references=REFERENCES,
    )
)
