"""Study ``initialization``: every initializer of :mod:`smithing.init` on the same deep MLP,
and deep *linear* networks with orthogonal vs scaled Gaussian weights.

**Part 1, the same MLP under every rule.** One architecture, activation, optimizer and data
order; only the initial weights differ (all biases 0). The rules, with ``n_in``/``n_out`` a
layer's fans (``gain="paper"`` for the fan-based rules, i.e. each paper's own constant whatever
the activation, so He's sqrt 2 is applied to tanh units too):

* ``uniform``: ``U(-0.05, 0.05)``; ``normal``: ``N(0, 0.01^2)`` (fixed scales, no fans);
* ``standard``: ``U(-1/sqrt(n_in), 1/sqrt(n_in))``, Glorot & Bengio's "standard" baseline (also
  PyTorch's ``nn.Linear`` weight default), written as ``lecun_uniform`` with gain ``1/sqrt 3``;
* ``glorot_uniform`` / ``glorot_normal``: ``Var(W) = 2/(n_in + n_out)`` (Glorot & Bengio,
  AISTATS 2010, eq. 16, "normalized");
* ``he_uniform`` / ``he_normal``: ``Var(W) = 2/n_in`` (He et al., ICCV 2015);
* ``lecun_uniform`` / ``lecun_normal``: ``Var(W) = 1/n_in`` (LeCun et al., Efficient BackProp
  1998);
* ``orthogonal``: ``W = Q`` from the SVD of a Gaussian matrix (Saxe et al., ICLR 2014);
* ``sparse``: 15 non-zero ``N(0, 1)`` incoming weights per unit (Martens, ICML 2010);
* ``lsuv``: orthogonal, then each layer rescaled to unit output variance on a batch of 512
  training examples (Mishkin & Matas, ICLR 2016).

``identity`` is left out: it is meant for square recurrent matrices (Le et al. 2015; see the
recurrent studies); on the MLP's rectangular layers it would copy the first inputs through and
leave the other units with zero weights. ``pretrained`` is the subject of the pretraining
studies. These runs are ``"mlp"`` runs that differ only in ``init``/``init_options``, so the
runner trains all of them (variants x seeds) as one batched ensemble.

Why the fan rules exist: the figure ``variance.png`` rebuilds each network at initialization
(from the stored configurations, :func:`smithing.experiment.mlp.build_model`) and shows, layer by
layer, the variance of the activations (forward) and of the back-propagated gradients
``dL/dz`` (backward) on a batch. With ``n_in Var(W) = 1`` (LeCun) the forward variance of a
near-linear unit is kept, with ``n_out Var(W) = 1`` the backward one; Glorot's rule is the
compromise; a fixed scale lets both shrink geometrically with depth.

**Part 2, deep linear networks** (Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear
dynamics of learning in deep linear neural networks", ICLR 2014). A product of ``depth`` square
``width x width`` matrices is trained by full-batch gradient descent on a synthetic regression
``y = A x`` (``A`` Gaussian with variance ``1/width``; whitened inputs ``x_i = sqrt(width) e_i``,
i.e. Saxe et al.'s input correlation ``Sigma_11 = I``; loss ``1/2 mean ||W_depth ... W_1 x -
y||^2 = ||W_depth ... W_1 - A||_F^2 / 2``), from (a) orthogonal matrices and (b) the "scaled
Gaussian" ``N(0, 1/width)`` (``lecun_normal``, which keeps the average squared norm of a
signal). We count the epochs until the loss falls below 1 % of the zero predictor's, using for
each depth and init the fastest learning rate of a geometric grid (``LINEAR_LRS``, 1 to 0.003,
all trained at once from the same start: the first rate to reach the threshold wins), up to
``epochs`` epochs. The
end-to-end map of orthogonal factors has all singular values 1 at every depth; the product of
Gaussian factors has a spread of singular values that widens with depth, and its slow modes
make learning slow. This protocol (optimal lr per depth on a small grid, synthetic task) is
ours; Saxe et al.'s exact setup was not checked here.

Scales. quick: ``digits``, tanh, 5 hidden layers x 64 units, SGD with momentum 0.9, lr 0.01,
mini-batches of 32, 20 epochs, 3 seeds; linear nets of width 16, depths 1, 2, 4, 8, 16, at most
1000 epochs. paper: MNIST, tanh, 5 hidden layers x 1000 units, plain SGD with mini-batches of
10 as in Glorot & Bengio's Table 1, lr 0.01 (they tuned the learning rate per model; we do not),
30 epochs; linear nets of width 100, depths up to 32, at most 5000 epochs. The paper-scale
settings were not run when this study was written.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from smithing._optional import require
from smithing.experiment import (
    Figure,
    RunResult,
    Study,
    Table,
    Variant,
    error_table,
    register,
)

KIND = "deep-linear"
PAPER = {"gain": "paper"}
#: name -> (initializer, init_options, the rule in words)
INITS: dict[str, tuple[str, dict, str]] = {
    "uniform": ("uniform", {"a": 0.05}, "U(±0.05)"),
    "normal": ("normal", {"sigma": 0.01}, "N(0, 0.01²)"),
    "standard": (
        "lecun_uniform",
        {"gain": 1 / math.sqrt(3)},
        "U(±1/√n_in) (Glorot & Bengio's 'standard', torch's default)",
    ),
    "glorot_uniform": ("glorot_uniform", PAPER, "U(±√(6/(n_in+n_out)))"),
    "glorot_normal": ("glorot_normal", PAPER, "N(0, 2/(n_in+n_out))"),
    "he_uniform": ("he_uniform", PAPER, "U(±√(6/n_in))"),
    "he_normal": ("he_normal", PAPER, "N(0, 2/n_in)"),
    "lecun_uniform": ("lecun_uniform", PAPER, "U(±√(3/n_in))"),
    "lecun_normal": ("lecun_normal", PAPER, "N(0, 1/n_in)"),
    "orthogonal": ("orthogonal", PAPER, "Q of the SVD of a Gaussian matrix"),
    "sparse": ("sparse", {}, "15 non-zero N(0,1) inputs per unit"),
    "lsuv": ("lsuv", {}, "orthogonal, then unit output variance per layer (data)"),
}
LINEAR_INITS = ("orthogonal", "gaussian")
LINEAR_LRS = tuple(2.0**-k for k in range(9))  # 1, 1/2, ..., 1/256
THRESHOLD = 0.01  # loss below this fraction of the zero predictor's loss
VARIANCE_BATCH = 512


def _linear_variants(scale: str) -> list[Variant]:
    if scale == "quick":
        depths, width, epochs = (1, 2, 4, 8, 16), 16, 1000
    else:
        depths, width, epochs = (1, 2, 4, 8, 16, 32), 100, 5000
    return [
        Variant(
            f"linear-{init}-d{d}",
            {
                "linear_init": init,
                "depth": d,
                "width": width,
                "epochs": epochs,
                "lrs": list(LINEAR_LRS),
                "threshold": THRESHOLD,
            },
            KIND,
        )
        for init in LINEAR_INITS
        for d in depths
    ]


def variants(scale: str) -> list[Variant]:
    if scale == "quick":
        base = {
            "hidden": [64] * 5,
            "activation": "tanh",
            "optimizer": "momentum",
            "lr": 0.01,
            "epochs": 20,
            "batch_size": 32,
        }
    else:
        base = {
            "hidden": [1000] * 5,
            "activation": "tanh",
            "optimizer": "sgd",
            "lr": 0.01,
            "epochs": 30,
            "batch_size": 10,
        }
    mlps = [
        Variant(name, {**base, "init": init, "init_options": dict(opts)})
        for name, (init, opts, _) in INITS.items()
    ]
    return mlps + _linear_variants(scale)


# ----------------------------------------------------------------------------- deep linear


def deep_linear_weights(
    depth: int, width: int, init: str, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """``depth`` square ``(width, width)`` matrices: ``"orthogonal"`` (Saxe et al. 2014, SVD) or
    ``"gaussian"`` (``N(0, 1/width)``, the scaled Gaussian; ``lecun_normal`` with gain 1)."""
    from smithing import init as _init
    from smithing._registry import check

    check(init in LINEAR_INITS, "linear_init", init, f"one of {LINEAR_INITS}")
    check(isinstance(depth, int) and depth >= 1, "depth", depth, "a positive int")
    rule = "orthogonal" if init == "orthogonal" else "lecun_normal"
    return [
        _init.initialize(torch.empty(width, width), rule, generator=generator, gain=1.0)
        for _ in range(depth)
    ]


def train_deep_linear(
    ws0: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    lrs: list[float],
    max_epochs: int,
    target: float,
) -> dict:
    """Full-batch gradient descent on ``1/2 mean ||W_d ... W_1 x - y||^2`` for every learning
    rate of ``lrs`` at once (a leading lr axis on every weight; the rates never interact).

    Every rate starts from the same ``ws0``. Training stops at the first epoch at which some
    rate's loss is ``<= target`` (that rate is the fastest of the grid), when every rate has
    diverged (loss non-finite or above 1e6 x its start) or after ``max_epochs`` epochs.
    Returns ``epochs`` (that first epoch, or None), ``lr`` (the fastest rate, or the one with
    the lowest final loss when none reached the target, None if all diverged), ``losses``
    (per epoch, the loss of that rate), ``diverged`` (per rate).
    """
    k = len(lrs)
    lr = torch.tensor(lrs, dtype=x.dtype, device=x.device).view(k, 1, 1)  # (k, 1, 1)
    ws = [w.unsqueeze(0).repeat(k, 1, 1).requires_grad_(True) for w in ws0]  # (k, width, width)
    xb = x.unsqueeze(0).expand(k, -1, -1)  # (k, n, width)
    alive = torch.ones(k, dtype=torch.bool, device=x.device)
    history = []
    first = None
    for epoch in range(max_epochs + 1):
        h = xb
        for w in ws:
            h = torch.bmm(h, w.transpose(1, 2))  # (k, n, width): h <- W h per example
        per_rate = 0.5 * (h - y).pow(2).sum(-1).mean(-1)  # (k,) 1/2 mean ||W x - y||^2
        vals = per_rate.detach()
        if epoch == 0:
            start = vals.clone()
        alive &= torch.isfinite(vals) & (vals <= 1e6 * start)
        history.append(torch.where(alive, vals, torch.full_like(vals, math.nan)))
        hit = alive & (vals <= target)
        if bool(hit.any()):
            first = epoch
            break
        if not bool(alive.any()) or epoch == max_epochs:
            break
        loss = torch.where(alive, per_rate, torch.zeros_like(per_rate)).sum()
        grads = torch.autograd.grad(loss, ws)
        with torch.no_grad():
            step = lr * alive.view(k, 1, 1)  # dead rates stop moving
            for w, g in zip(ws, grads):
                w.sub_(step * torch.nan_to_num(g))  # W_l <- W_l - lr dL/dW_l
    hist = torch.stack(history)  # (epochs, k)
    if first is not None:
        best = int(torch.nonzero(hit)[0])
    elif bool(alive.any()):
        last = torch.where(alive, hist[-1], torch.full_like(hist[-1], math.inf))
        best = int(last.argmin())
    else:
        best = None
    return {
        "epochs": first,
        "lr": lrs[best] if best is not None else None,
        "losses": hist[:, best].tolist() if best is not None else [],
        "diverged": (~alive).tolist(),
    }


def deep_linear_run(config: dict, seed: int, device: str = "cpu") -> RunResult:
    """One deep linear network: epochs to the loss threshold at the best learning rate.

    ``config``: ``linear_init`` ("orthogonal" | "gaussian"), ``depth``, ``width``,
    ``epochs`` (the cap), ``lrs`` (the grid, trained together), ``threshold``
    (fraction of the zero predictor's loss). The data and the initial weights come from
    ``seed`` and are the same for every learning rate. ``final``: ``epochs_to_threshold`` (NaN
    when no rate reached it), ``reached``, ``lr`` (the fastest rate), ``final_rel_loss``.
    ``epochs``: that rate's loss relative to the zero predictor's (log-spaced epochs).
    ``extra``: ``singular_values`` of the end-to-end map at init, ``diverged`` per rate.
    """
    t0 = time.perf_counter()
    depth, width = int(config["depth"]), int(config["width"])
    cap = int(config.get("epochs", 1000))
    lrs = [float(v) for v in config.get("lrs", LINEAR_LRS)]
    thr = float(config.get("threshold", THRESHOLD))
    g = torch.Generator().manual_seed(10_000 + seed)
    x = math.sqrt(width) * torch.eye(width)  # (width, width) whitened inputs: X^T X / n = I
    a = torch.randn(width, width, generator=g) / math.sqrt(width)  # target map A
    y = x @ a.T  # (width, width) targets y = A x
    gw = torch.Generator().manual_seed(seed)
    ws0 = deep_linear_weights(depth, width, config["linear_init"], generator=gw)
    prod = torch.eye(width)
    for w in ws0:
        prod = w @ prod  # W_depth ... W_1
    svals = torch.linalg.svdvals(prod).tolist()
    x, y = x.to(device), y.to(device)
    ws0 = [w.to(device) for w in ws0]
    base = float(0.5 * y.pow(2).sum(1).mean())  # the zero predictor's loss
    out = train_deep_linear(ws0, x, y, lrs, cap, thr * base)
    rel = [v / base for v in out["losses"]]
    idx = sorted({int(i) - 1 for i in np.geomspace(1, len(rel), 120)}) if rel else []
    epochs = [{"epoch": i, "train_loss": rel[i]} for i in idx]
    final = {
        "epochs_to_threshold": float(out["epochs"]) if out["epochs"] is not None else math.nan,
        "reached": out["epochs"] is not None,
        "lr": out["lr"] if out["lr"] is not None else math.nan,
        "final_rel_loss": rel[-1] if rel else math.nan,
    }
    extra = {
        "singular_values": svals,
        "lrs": lrs,
        "diverged": out["diverged"],
        "cap": cap,
        "depth": depth,
        "linear_init": config["linear_init"],
    }
    return RunResult("done", final, epochs, extra, seconds=time.perf_counter() - t0)


def run(config: dict, seed: int, device: str = "cpu") -> RunResult:
    """The study's non-"mlp" runs: the deep linear networks."""
    if "depth" in config:
        return deep_linear_run(config, seed, device)
    raise ValueError(f"config={sorted(config)!r} is invalid: expected a deep-linear configuration")


# ----------------------------------------------------------------------------- figures


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


REFERENCES = """
Glorot & Bengio 2010 (AISTATS), Table 1, MNIST, 5 hidden layers x 1000 units, minibatch 10,
test error (%). These are UNVERIFIED recollections (REFERENCES.md, confidence U), not confirmed
in the paper; the paper also reports Shapeset, CIFAR-10 and Small-ImageNet.

| activation, init | MNIST test error (%) |
|---|---|
| softsign, standard init | 1.64 |
| tanh, standard init | 1.76 |
| tanh, normalized init (glorot_uniform) | 1.64 |
| sigmoid, standard init | 2.21 |

Our paper-scale variants "standard" and "glorot_uniform" (tanh) are the two tanh rows; the
quick scale (digits, 5 x 64) is not comparable in absolute numbers.
Saxe, McClelland & Ganguli 2014 (ICLR) (qualitative, U): deep linear networks started from
orthogonal weights learn in a number of epochs that does not grow with depth, while scaled
random Gaussian initializations slow down as depth grows.
"""

STUDY = register(
    Study(
        name="initialization",
        description="every initializer (uniform, normal, Glorot, He, LeCun, orthogonal, sparse, "
        "LSUV) on the same deep tanh MLP; signal variance per layer at init; deep linear "
        "nets: orthogonal vs scaled Gaussian",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 3, "paper": 3},
        run=run,
        references=REFERENCES,
    )
)
