"""Study ``pruning``: test error vs fraction of weights removed, magnitude vs OBD vs OBS.

One run (kind ``"prune"``) trains a base MLP (:func:`smithing.experiment.mlp.train_one`), then for
each method draws two curves over the fractions ``f`` of its weights (biases are never pruned):

* **without retraining (one-shot)**: every point prunes the *base* network to ``f`` using the
  base network's saliencies. Magnitude ``|w_k|`` and OBD ``1/2 h_kk w_k^2`` (LeCun, Denker &
  Solla, "Optimal Brain Damage", NIPS 2, 1990) rank the weights once and remove the lowest
  ``f``; OBS (Hassibi & Stork, "Second order derivatives for network pruning: Optimal Brain
  Surgeon", NIPS 5, 1993) removes weights one at a time by ``L_q = w_q^2 / (2 [H^-1]_qq)`` with
  the compensating update ``dw = -(w_q / [H^-1]_qq) H^-1 e_q`` (eq. 5) and the exact rank-one
  downdate of ``H^-1``, from one Hessian of the base network, the curve being read off as the
  removals pass each ``f`` (:func:`smithing.regularize.obs_prune` continued from fraction to
  fraction on :func:`smithing.regularize.obs_inverse` of the base network).
* **with retraining (iterative)**: the classic prune-retrain schedule (the recipe of both
  papers): prune to the next ``f`` (:func:`smithing.regularize.prune`, extending the previous
  mask; OBD/OBS recompute their Hessian at the current network), then retrain
  ``retrain_epochs`` epochs with the mask re-applied after every step, and evaluate.

What the second-order methods run on (documented departures): OBD's diagonal is
``hessian="fisher"`` of :func:`smithing.regularize.prune` with the Hessian examples repeated
``obd_fisher_draws`` times (one label drawn from the model per copy): a Monte-Carlo estimate of
the Gauss-Newton diagonal, which drops the same second-derivative terms as the paper's
Levenberg-Marquardt backward pass (for a one-hidden-layer ReLU network it equals the exact
diagonal). OBS uses the Gauss-Newton (outer-product) matrix
``G = (1/N) sum_i J_i^T (diag q_i - q_i q_i^T) J_i``
(:func:`smithing.regularize.gauss_newton_matrix`) over the first ``hessian_examples``
training examples, jointly over **all** weight matrices (a global ranking, like OBD's), and
inverts ``G + obs_damping * I`` -- what Hassibi & Stork's outer-product recursion computes with
its starting value ``H_0^-1 = I / alpha``. The damping, 1e-2 (about the mean of ``diag G``
at quick scale), bounds the compensating update: with 1e-4 it takes huge steps along
directions the quadratic model sees as flat (weights into ReLU units that are off on the
Hessian examples) and the 90 % network stays broken even after retraining (75 % test error,
measured). (The exact Hessian of a trained ReLU network is
indefinite -- about 10 % negative eigenvalues here -- and OBS's ``[H^-1]_qq`` then goes
negative.) At quick scale the network is 64-10-10, so the joint 740 x 740 inverse and its ~700
rank-one downdates per curve are cheap; biases are never pruned.
"""

from __future__ import annotations

import copy
import time

import torch
from torch.nn import functional as F

from smithing.checkpoint import phase as _phase
from smithing.experiment import Figure, RunResult, Study, Table, Variant, mean_std_ci, register
from smithing.regularize.prune import gauss_newton_matrix, obs_inverse, obs_prune

METHODS = ("magnitude", "obd", "obs")
FRACTIONS = (0.0, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95)
COLORS = {"magnitude": "tab:blue", "obd": "tab:orange", "obs": "tab:green"}
#: the pruning options of a run and their defaults (the quick scale's)
DEFAULTS = {
    "methods": list(METHODS),
    "fractions": list(FRACTIONS),
    "retrain_epochs": 2,
    "retrain_lr": 0.02,
    "hessian_examples": 400,
    "obd_hessian": "fisher",
    "obd_fisher_draws": 16,
    "obs_damping": 1e-2,
}
#: the run's keys that are not MLPConfig fields
PRUNE_KEYS = tuple(DEFAULTS)


def variants(scale: str) -> list[Variant]:
    if scale == "quick":
        cfg = {
            "hidden": [10],
            "activation": "relu",
            "optimizer": "momentum",
            "lr": 0.05,
            "momentum": 0.9,
            "epochs": 40,
            "batch_size": 32,
            **DEFAULTS,
        }
    else:
        # MNIST 784-300-100-10 (LeCun et al. 1998's MLP): 266,200 weights, so OBS's inverse
        # Hessian (570 GB in float64) is out of reach; magnitude and OBD only.
        cfg = {
            "hidden": [300, 100],
            "activation": "relu",
            "optimizer": "momentum",
            "lr": 0.05,
            "momentum": 0.9,
            "epochs": 30,
            "batch_size": 100,
            "methods": ["magnitude", "obd"],
            "fractions": [0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99],
            "retrain_epochs": 2,
            "retrain_lr": 0.01,
            "hessian_examples": 10000,
            "obd_hessian": "fisher",
            "obd_fisher_draws": 1,
            "obs_damping": 1e-2,
        }
    return [Variant("prune", cfg, kind="prune")]


# --------------------------------------------------------------------------- the run
def _split_config(config: dict) -> tuple[dict, dict]:
    mlp = {k: v for k, v in config.items() if k not in PRUNE_KEYS}
    opts = {k: config[k] for k in PRUNE_KEYS if k in config}
    return mlp, opts


def _test_error(model, data) -> tuple[float, float]:
    """(test error, training loss) of ``model`` in eval mode."""
    from smithing.train import evaluate

    train_loss, _ = evaluate(model, data.train, data.task)
    _, test_err = evaluate(model, data.test, data.task)
    return test_err, train_loss


def _weight_names(model) -> list[str]:
    from smithing.regularize import select

    return [n for n, _ in select(model.named_parameters())]


def _prune(*args, **kw):
    """:func:`smithing.regularize.prune` under ``no_grad``.

    The Hessians are ``torch.func`` transforms, which differentiate regardless; without the
    outer ``no_grad`` the Hessian would also be recorded on the autograd graph through the
    (unpruned, trainable) biases and OBS's thousands of downdates would keep it alive.
    """
    from smithing.regularize import prune

    with torch.no_grad():
        return prune(*args, **kw)


def _n_weights(model) -> int:
    names = set(_weight_names(model))
    return sum(p.numel() for n, p in model.named_parameters() if n in names)


def _flat_weights(model, names) -> torch.Tensor:
    named = dict(model.named_parameters())
    return torch.cat([named[n].detach().reshape(-1) for n in names]).double()  # (n,)


def _set_flat_weights(model, names, w: torch.Tensor) -> None:
    named = dict(model.named_parameters())
    start = 0
    with torch.no_grad():
        for n in names:
            p = named[n]
            p.copy_(w[start : start + p.numel()].reshape(p.shape).to(p.dtype))
            start += p.numel()


def _obd_data(xh, yh, opts) -> tuple[torch.Tensor, torch.Tensor]:
    """The Hessian examples, repeated for more label draws of the Fisher estimate."""
    r = int(opts.get("obd_fisher_draws", 1)) if opts.get("obd_hessian") == "fisher" else 1
    return xh.repeat(r, *([1] * (xh.ndim - 1))), yh.repeat(r)


def _one_shot(base, method: str, fractions, data, xh, yh, opts, gen) -> dict:
    """Prune copies of ``base`` to each fraction with the base network's saliencies.

    Magnitude and OBD rank once (nested masks); OBS removes weights one at a time from one
    inverse Gauss-Newton matrix of ``base`` and the curve is read off as it passes each fraction.
    """
    errs, losses = [], []
    names = _weight_names(base)
    if method == "obs":
        w = _flat_weights(base, names)
        removed = torch.zeros_like(w, dtype=torch.bool)
        g = gauss_newton_matrix(base, names, xh)  # (n, n), Hassibi & Stork Sec. 3
        h_inv = obs_inverse(g, damping=opts["obs_damping"])  # (G + alpha I)^-1
    for f in fractions:
        model = copy.deepcopy(base)
        if method == "obs":
            k = max(0, round(f * len(w)) - int(removed.sum()))
            w, removed, _, h_inv = obs_prune(w, h_inv, k, removed=removed, downdated=True)
            _set_flat_weights(model, names, w)
        elif f > 0:
            _prune(
                model,
                method,
                f,
                loss_fn=F.cross_entropy,
                data=_obd_data(xh, yh, opts),
                hessian=opts["obd_hessian"],
                generator=torch.Generator().manual_seed(int(gen.initial_seed())),
            )
        e, lo = _test_error(model, data)
        errs.append(e)
        losses.append(lo)
    return {"test_error": errs, "train_loss": losses}


def _prune_more(model, method: str, f: float, mask, xh, yh, opts, gen):
    """Extend ``mask`` to a total fraction ``f`` of ``model``'s weights; returns the new mask.

    OBS: :func:`smithing.regularize.prune` with the Gauss-Newton matrix of the current network
    over all the Hessian examples at once (``chunk=None``, as the one-shot curve's), damped by
    ``obs_damping`` and inverted over the kept weights.
    """
    if method == "obs":
        options = {
            "data": (xh, yh),
            "hessian": "gauss_newton",
            "damping": opts["obs_damping"],
            "chunk": None,
            "max_params": _n_weights(model),  # no limit: the study's nets are small
        }
    else:
        options = {"data": _obd_data(xh, yh, opts), "hessian": opts["obd_hessian"]}
    mask, _ = _prune(model, method, f, loss_fn=F.cross_entropy, mask=mask, generator=gen, **options)
    return mask


def _iterative(base, method: str, fractions, data, xh, yh, opts, cfg, gen, checkpoint=None) -> dict:
    """Prune to each fraction in turn, retraining with the mask in between (each retraining
    resumable from its child checkpoint ``<method>-retrain<i>``)."""
    from smithing.train import fit

    model = copy.deepcopy(base)
    mask = None
    errs, losses = [], []
    for i, f in enumerate(fractions):
        if f > 0:
            model.eval()
            mask = _prune_more(model, method, f, mask, xh, yh, opts, gen)
            if opts["retrain_epochs"] > 0:
                fit(
                    model,
                    data,
                    epochs=opts["retrain_epochs"],
                    lr=opts["retrain_lr"],
                    batch_size=cfg.batch_size,
                    optimizer=cfg.optimizer,
                    optimizer_options=cfg.optimizer_kwargs(),
                    seed=cfg.seed * 1000 + i,
                    regularizer=mask,  # re-applied after every optimizer step
                    checkpoint=_phase(checkpoint, f"{method}-retrain{i}"),
                )
        e, lo = _test_error(model, data)
        errs.append(e)
        losses.append(lo)
    return {"test_error": errs, "train_loss": losses}


def run(config: dict, seed: int, device: str = "cpu", *, checkpoint=None) -> RunResult:
    """Train the base network, then measure every method's two curves (see the module doc).

    ``checkpoint`` (the runner's): the base network trains with its child ``base``, each
    retraining with ``<method>-retrain<i>``; a rerun skips the finished ones (the pruning
    itself is recomputed)."""
    from smithing.experiment.mlp import MLPConfig, load_data, train_one

    t0 = time.perf_counter()
    mlp, opts = _split_config(config)
    opts = {**DEFAULTS, **opts}
    from smithing._registry import check
    from smithing.regularize import PRUNE_METHODS

    for m in opts["methods"]:
        PRUNE_METHODS.get(m)
    for f in opts["fractions"]:
        check(0.0 <= f < 1.0, "fractions", opts["fractions"], "fractions in [0, 1)")
    cfg = MLPConfig.from_dict(mlp)
    data = load_data(cfg, device)
    base, hist = train_one(cfg, device, data=data, checkpoint=_phase(checkpoint, "base"))
    if hist.status != "done":
        return RunResult(hist.status, hist.final, hist.epochs, {}, hist.message, hist.seconds)
    base.eval()
    xh = data.train.x[: opts["hessian_examples"]]
    yh = data.train.y[: opts["hessian_examples"]]
    fractions = [float(f) for f in opts["fractions"]]
    curves, seconds = {}, {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 2_000_003)  # retraining's global draws (none for an MLP)
        for method in opts["methods"]:
            t = time.perf_counter()
            gen = torch.Generator().manual_seed(cfg.seed)
            one = _one_shot(base, method, fractions, data, xh, yh, opts, gen)
            it = _iterative(base, method, fractions, data, xh, yh, opts, cfg, gen, checkpoint)
            curves[method] = {
                "test_error": one["test_error"],
                "train_loss": one["train_loss"],
                "test_error_retrained": it["test_error"],
                "train_loss_retrained": it["train_loss"],
            }
            seconds[method] = time.perf_counter() - t
    n_weights = _n_weights(base)
    extra = {
        "fractions": fractions,
        "curves": curves,
        "n_weights": n_weights,
        "method_seconds": seconds,
        "options": opts,
    }
    return RunResult("done", hist.final, hist.epochs, extra, "", time.perf_counter() - t0)


# --------------------------------------------------------------------------- report
def _mean_curves(results, method: str, key: str):
    import numpy as np

    rows = [
        r.extra["curves"][method][key]
        for r in results.runs
        if r.status == "done" and method in r.extra.get("curves", {})
    ]
    if not rows:
        return None, None, None
    a = np.array(rows, dtype=float)
    frac = results.runs[0].extra["fractions"]
    for r in results.runs:
        if r.status == "done" and "fractions" in r.extra:
            frac = r.extra["fractions"]
            break
    return np.array(frac), a.mean(0), a.std(0)


def _methods(results) -> list[str]:
    seen: list[str] = []
    for r in results.runs:
        for m in r.extra.get("curves", {}):
            if m not in seen:
                seen.append(m)
    return seen


def figures(results, out_dir: str) -> list[Figure]:
    from smithing.plots import plt, save

    methods = _methods(results)
    if not methods:
        return []
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(11, 4.2))
    for m in methods:
        c = COLORS.get(m)
        for key, style, label in (
            ("test_error_retrained", "-", f"{m}, retrained"),
            ("test_error", "--", f"{m}, one-shot"),
        ):
            x, mean, std = _mean_curves(results, m, key)
            if x is None:
                continue
            axes[0].plot(100 * x, 100 * mean, style, color=c, marker="o", ms=3.5, label=label)
            axes[0].fill_between(
                100 * x, 100 * (mean - std), 100 * (mean + std), color=c, alpha=0.1
            )
        x, mean, _ = _mean_curves(results, m, "train_loss")
        if x is not None:
            axes[1].plot(100 * x, mean, "--", color=c, marker="o", ms=3.5, label=f"{m}, one-shot")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("weights removed (%)")
    axes[0].set_ylabel("test error (%)")
    axes[0].set_title("test error (mean ± std over seeds)")
    axes[0].legend(fontsize=8)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("weights removed (%)")
    axes[1].set_ylabel("training cross-entropy")
    axes[1].set_title("training loss right after pruning (no retraining)")
    axes[1].legend(fontsize=8)
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.yaxis.set_major_formatter(plain)
    axes[0].yaxis.set_minor_formatter(plain)  # percent: a decade or two, label 2..9 too
    axes[0].tick_params(axis="y", which="minor", labelsize=7)
    axes[1].yaxis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
    opts = next((r.extra.get("options") for r in results.runs if r.extra.get("options")), {})
    n_w = next((r.extra.get("n_weights") for r in results.runs if r.extra.get("n_weights")), "?")
    return [
        Figure(
            save(fig, out_dir, "pruning.png"),
            f"Test error vs the fraction of the {n_w} weights removed (biases kept), one color "
            "per method. Dashed: one-shot pruning of the trained network, no retraining (OBS "
            "with its compensating update from one Gauss-Newton matrix). Solid: iterative "
            "pruning, "
            f"retraining {opts.get('retrain_epochs', '?')} epochs with the mask after each "
            "step. Right: the training loss right after one-shot pruning; OBS's compensation "
            "keeps it lowest.",
        )
    ]


def table(results) -> Table:
    """One row per method and curve, one column per pruned fraction: test error (%)."""
    methods = _methods(results)
    done = [r for r in results.runs if r.status == "done" and r.extra.get("curves")]
    fractions = done[0].extra["fractions"] if done else []
    cols = list(range(len(fractions)))
    rows = []
    for m in methods:
        for key, label in (("test_error", "one-shot"), ("test_error_retrained", "retrained")):
            cells = [m, label]
            for i in cols:
                vals = [r.extra["curves"][m][key][i] for r in done if m in r.extra["curves"]]
                mu, sd, _, k = mean_std_ci(vals)
                cells.append(f"{100 * mu:.1f} ± {100 * sd:.1f}" if k else "n/a")
            cells.append(sum(m in r.extra["curves"] for r in done))
            rows.append(cells)
    return Table(
        ["method", "curve", *[f"{100 * fractions[i]:g} % removed" for i in cols], "runs"],
        rows,
        "Test error (%) after pruning, mean ± sample std over seeds (0 % removed: the trained "
        "network itself).",
    )


STUDY = register(
    Study(
        name="pruning",
        mlp_keys=True,
        description="magnitude vs Optimal Brain Damage vs Optimal Brain Surgeon: test error vs "
        "fraction pruned, with and without retraining",
        variants=variants,
        figures=figures,
        table=table,
        run=run,
        seeds={"quick": 3, "paper": 3},
        references=(
            "No published MNIST-MLP numbers to match. LeCun, Denker & Solla (1990) pruned a "
            "constrained digit-recognition network and report that OBD ranks weights better "
            "than magnitude and that retraining after pruning recovers the test error; Hassibi "
            "& Stork (1993) report that OBS, whose update compensates the removed weight, "
            "finds smaller networks than magnitude and OBD on the MONK's problems. The "
            "qualitative claims to check here: without retraining OBS >= OBD >= magnitude at "
            "high fractions; retraining closes most of the gap."
        ),
    )
)
