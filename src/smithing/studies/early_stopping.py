"""Study ``early-stopping``: stop where the validation loss is lowest; it also keeps weights small.

An over-parameterized MLP on a small training set with noisy labels (quick: digits, 200
training examples, 64-500-500-10 ReLU; paper: MNIST, 1000 training examples, 784-500-500-10
ReLU; both with 20 % symmetric label noise on the training set only) trained by SGD with
momentum, two variants with the same seeds and the same epoch limit:

* ``trained to the end``: no early stopping, all ``epochs``;
* ``early stopping``: :class:`~smithing.train.EarlyStopping` on the validation loss with
  ``patience`` epochs, restoring the best epoch's weights (``restore_best_weights``); it ends
  ``patience`` epochs after its best epoch (once ``patience`` epochs in a row brought no
  improvement), or at the epoch limit.

Same seed, same initial weights, same data order: up to the stop the two runs are the same run
(bitwise on the CPU), so the stopped net IS the fully trained net at its best epoch.

*Label noise* (a departure from the plain setting, documented): with probability
``label_noise`` a training label is replaced by a class drawn uniformly (it may draw the true
class again), once, from a generator seeded ``label_noise_seed`` (the same noisy labels for
every seed and variant; validation and test labels stay clean). On clean digits this network
fits the 200 examples within ~20 epochs and then barely moves (validation loss and weight norm
stay flat, so early stopping changes little); the noisy labels are memorized only later, which
is the regime early stopping is for (Li, Soltanolkotabi & Oymak, "Gradient descent with early
stopping is provably robust to label noise for overparameterized neural networks", AISTATS
2020). Set ``label_noise`` to 0 for the clean setting.

Both variants run through :func:`smithing.train.fit` one at a time (kind ``"mlp-trace"``: an
MLP configuration as for ``"mlp"`` runs plus ``label_noise`` and ``label_noise_seed``) with a
callback that records the L2 norm of all weight matrices, ``sqrt(sum_l ||W_l||_F^2)`` (biases
excluded, as weight penalties exclude them), in every epoch's record (``weight_norm``); the
norm at initialization is ``extra["weight_norm_init"]`` and the final one (after restoring)
``final["weight_norm"]``.

The lecture's observation (e.g. Goodfellow, Bengio & Courville, "Deep Learning", MIT Press 2016,
section 7.8; Bishop, "Neural Networks for Pattern Recognition", 1995, section 9.2.4): the
training loss keeps falling while the validation loss turns up; early stopping picks the turn,
and since the weights start small and grow with training, stopping early acts like a weight
penalty (for a quadratic loss and gradient descent it is approximately L2 regularization with
strength ~ 1 / (learning rate x steps)).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from smithing._registry import check
from smithing.experiment import Figure, RunResult, Study, Table, Variant, mean_std_ci, register

FULL = "trained to the end"
STOPPED = "early stopping"

BASE = {
    "quick": {
        "dataset": "digits",
        "n_train": 200,
        "hidden": [500, 500],
        "activation": "relu",
        "optimizer": "momentum",
        "lr": 0.05,
        "batch_size": 32,
        "epochs": 80,
        "eval_train": True,
        "label_noise": 0.2,
        "label_noise_seed": 0,
    },
    "paper": {
        "dataset": "mnist",
        "n_train": 1000,
        "hidden": [500, 500],
        "activation": "relu",
        "optimizer": "momentum",
        "lr": 0.05,
        "batch_size": 32,
        "epochs": 200,
        "eval_train": True,
        "label_noise": 0.2,
        "label_noise_seed": 0,
    },
}
PATIENCE = {"quick": 10, "paper": 20}


def variants(scale: str) -> list[Variant]:
    base = BASE[scale]
    return [
        Variant(FULL, {**base, "early_stopping_patience": None}, kind="mlp-trace"),
        Variant(
            STOPPED,
            {
                **base,
                "early_stopping_patience": PATIENCE[scale],
                "early_stopping_monitor": "valid_loss",
                "restore_best_weights": True,
            },
            kind="mlp-trace",
        ),
    ]


def weight_norm(model: torch.nn.Module) -> float:
    """``sqrt(sum_l ||W_l||_F^2)`` over the weight matrices of ``model.linears`` (no biases).

    Accepts stacked ensemble weights too: a leading members axis is summed over as well.
    """
    with torch.no_grad():
        total = sum(float((lin.weight.double() ** 2).sum()) for lin in model.linears)  # ||W||_F^2
    return math.sqrt(total)


def noisy_labels(
    y: torch.Tensor, n_classes: int, rate: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Symmetric label noise: each label is replaced, with probability ``rate``, by a class
    drawn uniformly from ``n_classes`` (possibly the true one, so a label changes with
    probability ``rate * (n_classes - 1) / n_classes``). Returns a new tensor; ``y`` is not
    modified."""
    check(0 <= rate <= 1, "label_noise", rate, "a number in [0, 1]")
    check(n_classes >= 2, "n_classes", n_classes, "at least 2 classes")
    yc = y.detach().cpu()
    replace = torch.rand(yc.shape, generator=generator) < rate  # (n,)
    drawn = torch.randint(0, n_classes, yc.shape, generator=generator)  # (n,)
    return torch.where(replace, drawn, yc).to(y.device)


def run_trace(config: dict, seed: int, device: str = "cpu", *, checkpoint=None) -> RunResult:
    """Train one MLP configuration with :func:`smithing.train.fit`, recording ``weight_norm``
    every epoch (the runner's ``run`` for kind ``"mlp-trace"``).

    ``config`` is an :class:`~smithing.experiment.mlp.MLPConfig` dictionary plus optional
    ``label_noise`` (rate, default 0) and ``label_noise_seed`` (default 0). The model and data
    are built exactly as the ``"mlp"`` runner builds them (same initialization and data order
    for a seed). Penalties, max-norm and gradient clipping are not supported here.
    ``checkpoint`` (the runner's) makes the training resumable (the norms are in the epoch
    records, which the checkpoint holds).
    """
    import dataclasses

    from smithing.experiment.mlp import MLPConfig, build_model, load_data, train_one

    config = dict(config)
    noise = float(config.pop("label_noise", 0.0))
    noise_seed = int(config.pop("label_noise_seed", 0))
    cfg = MLPConfig.from_dict(config)
    for name in ("l2", "l1"):
        check(getattr(cfg, name) == 0, name, getattr(cfg, name), "0 (not supported here)")
    check(cfg.max_norm is None, "max_norm", cfg.max_norm, "None (not supported here)")
    check(cfg.clip_norm is None, "clip_norm", cfg.clip_norm, "None (not supported here)")
    data = load_data(cfg, device)
    if noise > 0:
        gen = torch.Generator().manual_seed(noise_seed)
        y = noisy_labels(data.train.y, data.n_classes, noise, gen)
        data = dataclasses.replace(data, train=dataclasses.replace(data.train, y=y))
    model = build_model(cfg, data).to(device)
    norm0 = weight_norm(model)

    def record_norm(epoch: int, rec: dict, m) -> None:
        rec["weight_norm"] = weight_norm(m)  # norm of the weights at the end of this epoch

    # the "mlp" runner's training (early stopping, dropout seeding) plus the norm callback
    _, hist = train_one(
        cfg, device, data=data, model=model, callbacks=[record_norm], checkpoint=checkpoint
    )
    final = dict(hist.final)
    final["weight_norm"] = weight_norm(model)  # after restoring the best weights, if any
    extra = {
        "best_epoch": hist.best_epoch,
        "stop_reason": hist.stop_reason,
        "epochs_run": hist.epochs_run,
        "weight_norm": final["weight_norm"],
        "weight_norm_init": norm0,
        "label_noise": noise,
    }
    return RunResult(hist.status, final, hist.epochs, extra, hist.message, hist.seconds)


# ------------------------------------------------------------------------------ figures


def _runs(results, variant: str) -> list:
    return [r for r in results.of(variant) if r.status == "done" and r.epochs]


def _band(ax, curves, color, label, k=1.0, ls="-", first_epoch=1):
    from smithing.plots import mean_band

    x, m, s = mean_band(curves)
    if not len(x):
        return
    x = x + (first_epoch - 1)
    ax.plot(x, k * m, ls, color=color, label=label)
    ax.fill_between(x, k * (m - s), k * (m + s), color=color, alpha=0.15)


def figures(results, out_dir: str) -> list[Figure]:
    from smithing.plots import plt, save

    p = plt()
    full, stopped = _runs(results, FULL), _runs(results, STOPPED)
    ctrain, cvalid, cnorm = "#1f77b4", "#d62728", "#2ca02c"
    fig, axes = p.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    _band(
        ax,
        [[e.get("train_eval_loss", e["train_loss"]) for e in r.epochs] for r in full],
        ctrain,
        "training loss (noisy labels)",
    )
    _band(ax, [[e["valid_loss"] for e in r.epochs] for r in full], cvalid, "validation loss")
    ax.set_yscale("log")
    ax.set_ylabel("cross-entropy (log)")
    ax = axes[1]
    _band(
        ax,
        [[e.get("train_error", math.nan) for e in r.epochs] for r in full],
        ctrain,
        "training error (noisy labels)",
        k=100,
    )
    _band(
        ax, [[e["valid_error"] for e in r.epochs] for r in full], cvalid, "validation error", k=100
    )
    ax.set_ylabel("error (%)")
    ax = axes[2]
    _band(
        ax,
        [
            [r.extra.get("weight_norm_init", math.nan)] + [e["weight_norm"] for e in r.epochs]
            for r in full
        ],
        cnorm,
        "trained to the end (epoch 0: initial weights)",
        first_epoch=0,
    )
    ax.set_ylabel("L2 norm of all weights")
    # where early stopping stopped: its best epoch (weights kept) and its last epoch
    best = [r.extra["best_epoch"] for r in stopped if r.extra.get("best_epoch")]
    last = [r.extra["epochs_run"] for r in stopped]
    for r in stopped:
        b = r.extra.get("best_epoch")
        if not b:
            continue
        e = r.epochs[b - 1]
        axes[0].plot(b, e["valid_loss"], "*", color="k", ms=10, zorder=5)
        axes[1].plot(b, 100 * e["valid_error"], "*", color="k", ms=10, zorder=5)
        axes[2].plot(
            b, r.final.get("weight_norm", e["weight_norm"]), "*", color="k", ms=10, zorder=5
        )
    for ax in axes:
        if best:
            ax.axvline(
                float(np.mean(best)),
                color="k",
                ls="--",
                lw=1,
                label=f"best epoch, mean {np.mean(best):.1f} (★ per seed)",
            )
        if last:
            ax.axvline(
                float(np.mean(last)),
                color="grey",
                ls=":",
                lw=1.2,
                label=f"early stopping ends, mean {np.mean(last):.1f}",
            )
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    n_train = (full or stopped)[0].config.get("n_train") if (full or stopped) else None
    ds = (full or stopped)[0].config.get("dataset", "") if (full or stopped) else ""
    r0 = (full or stopped)[0] if (full or stopped) else None
    noise = r0.extra.get("label_noise", 0.0) if r0 else 0.0
    fig.suptitle(
        f"MLP {r0.config.get('hidden') if r0 else ''} on {n_train} {ds} examples "
        f"({100 * noise:.0f} % label noise): nets trained to the end, mean ± std over seeds; "
        "★ = the epoch whose weights early stopping keeps"
    )
    fig.tight_layout()
    curves = save(fig, out_dir, "curves.png")

    fig, axes = p.subplots(1, 2, figsize=(9, 3.8))
    names = [STOPPED, FULL]
    errs = [[100 * r.final["test_error"] for r in _runs(results, v)] for v in names]
    norms = [[r.final.get("weight_norm", math.nan) for r in _runs(results, v)] for v in names]
    for ax, data, lab in ((axes[0], errs, "test error (%)"), (axes[1], norms, "weight norm")):
        ax.boxplot(data, showmeans=True)
        ax.set_xticks([1, 2], names)
        for i, d in enumerate(data):
            ax.plot(
                np.full(len(d), i + 1.0) + np.linspace(-0.08, 0.08, len(d)),
                d,
                ".",
                color="k",
                alpha=0.6,
            )
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3, axis="y")
    inits = [
        r.extra["weight_norm_init"]
        for r in _runs(results, FULL) + _runs(results, STOPPED)
        if "weight_norm_init" in r.extra
    ]
    if inits:
        axes[1].axhline(
            float(np.mean(inits)), color="grey", ls="--", lw=1, label="at initialization (mean)"
        )
        axes[1].legend(fontsize=8)
    axes[0].set_title("test error of the final weights")
    axes[1].set_title("L2 norm of all weights (no biases)")
    fig.tight_layout()
    final = save(fig, out_dir, "final.png")
    return [
        Figure(
            curves,
            "Left to right: training and validation loss, training and validation "
            "error, and the L2 norm of all weights per epoch of the nets trained to the end "
            "(mean ± std over seeds). Stars: each seed's best validation-loss epoch, whose "
            "weights the early-stopped net keeps; dotted: where early stopping ends "
            "(patience epochs later).",
        ),
        Figure(
            final,
            "Test error and weight norm of the early-stopped nets (best weights "
            "restored) vs the nets trained to the end (box: quartiles; triangle: mean; "
            "dots: seeds).",
        ),
    ]


def table(results) -> Table:
    rows = []
    for v in (STOPPED, FULL):
        runs = results.of(v)
        if not runs:
            continue
        done = [r for r in runs if r.status == "done"]
        mt, st, ht, n = mean_std_ci([r.final.get("test_error", math.nan) for r in done])
        mw, sw, _, _ = mean_std_ci([r.final.get("weight_norm", math.nan) for r in done])
        mb, _, _, _ = mean_std_ci([float(r.extra.get("best_epoch") or math.nan) for r in done])
        me, _, _, _ = mean_std_ci([float(r.extra.get("epochs_run", math.nan)) for r in done])
        rows.append(
            [
                v,
                f"{100 * mt:.2f} ± {100 * st:.2f}" if n else "n/a",
                f"[{100 * (mt - ht):.2f}, {100 * (mt + ht):.2f}]" if n > 1 else "n/a",
                f"{mw:.2f} ± {sw:.2f}" if n else "n/a",
                f"{mb:.1f}",
                f"{me:.1f}",
                n,
            ]
        )
    return Table(
        [
            "variant",
            "test error (%) mean ± std",
            "95 % interval",
            "weight norm mean ± std",
            "epoch of the kept weights (mean)",
            "epochs run (mean)",
            "runs",
        ],
        rows,
        "Final test error and L2 norm of all weights of the weights each net ends with (the "
        "best epoch's for early stopping); mean ± sample std over seeds, 95 % Student-t "
        "interval of the mean.",
    )


REFERENCES = """
Qualitative, no published numbers for this setup:
- Prechelt, "Early Stopping - But When?", in Neural Networks: Tricks of the Trade, Springer
  LNCS 1524, 1998: the validation error curve is noisy with several local minima; stopping
  criteria trade training time for generalization.
- Goodfellow, Bengio & Courville, "Deep Learning", MIT Press 2016, section 7.8: early stopping
  restricts the optimization to a small volume of parameter space around the initial point, and
  for a quadratic error with gradient descent is equivalent to L2 regularization.
- The Theano deep learning tutorials (lisa-lab) use early stopping with a patience rule in
  every supervised script (see smithing.train.EarlyStopping's improvement_threshold).
"""


def run(config: dict, seed: int, device: str = "cpu", *, checkpoint=None) -> RunResult:
    """The runner's entry point for this study's ``"mlp-trace"`` variants."""
    return run_trace(config, seed, device, checkpoint=checkpoint)


STUDY = register(
    Study(
        name="early-stopping",
        mlp_keys=True,
        description="an over-parameterized MLP on a small training set: where early stopping "
        "stops, its test error vs training to the end, and its smaller weights",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 5, "paper": 5},
        run=run,
        references=REFERENCES,
    )
)
