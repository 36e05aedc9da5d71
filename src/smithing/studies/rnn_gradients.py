"""Study ``rnn-gradients``: the gradient norm ``||dL/dh_t||`` against the time lag ``T - t``.

For an Elman RNN ``h_t = f(W_ih x_t + W_hh h_{t-1} + b)`` back-propagation through time gives
``dL/dh_{t-1} = W_hh^T (f'(a_t) * dL/dh_t)``: the gradient reaching a state ``k`` steps before
the end has been multiplied by ``k`` Jacobians, so its norm shrinks or grows roughly
geometrically, by about ``||W_hh||_2 * |f'|`` per step (Bengio, Simard & Frasconi, "Learning
long-term dependencies with gradient descent is difficult", IEEE Trans. Neural Networks 5(2),
1994; Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks",
ICML 2013, section 2). The study measures it at initialization
(:func:`smithing.train.gradient_flow.time_lag_gradient_norms`) on a batch of adding-problem
sequences, for:

* tanh, Gaussian ``W_hh`` with spectral radius 0.9 (vanishing) and 3 (exploding: the input
  weights N(0, 0.001^2) keep the tanh units in their linear range, where ``f' ~ 1``);
* relu, Gaussian with radius 1 (vanishing: half the units are off, the effective radius is
  about 1/sqrt 2) and 2 (exploding);
* relu, identity (IRNN, Le, Jaitly & Hinton 2015): the input terms are tiny and the state
  starts at 0, so a unit once active stays active and ``dh_T/dh_t = I`` on those units: flat;
* orthogonal ``W_hh`` (Saxe et al. 2014) with tanh (flat: an isometry times ``f' ~ 1``) and with
  relu (vanishing again: an orthogonal matrix mixes the state, the relu masks about half of it
  every step; the identity does not mix).

Norms are computed in float64 so the exploding ones stay finite for the plot (in float32 they
overflow to inf beyond about 1e38). The figure divides each curve by its value at the last step
(lag 0); the table gives the decades gained or lost over the sequence and the per-step factor.
"""

from __future__ import annotations

import math
import time

import torch

from smithing.data.synthetic import adding_problem
from smithing.experiment import (
    Figure,
    RunResult,
    Study,
    Table,
    Variant,
    mean_std_ci,
    register,
    unwrap_paragraphs,
)
from smithing.nn.rnn import RNNRegressor
from smithing.train import time_lag_gradient_norms

#: name -> ElmanRNN options (and a line style for the figure)
MODELS: dict[str, dict] = {
    "tanh, Gaussian r=0.9": {"activation": "tanh", "init": "gaussian", "scale": 0.9},
    "tanh, Gaussian r=3": {"activation": "tanh", "init": "gaussian", "scale": 3.0},
    "relu, Gaussian r=1": {"activation": "relu", "init": "gaussian", "scale": 1.0},
    "relu, Gaussian r=2": {"activation": "relu", "init": "gaussian", "scale": 2.0},
    "IRNN (relu, identity)": {"activation": "relu", "init": "identity"},
    "tanh, orthogonal": {"activation": "tanh", "init": "orthogonal"},
    "relu, orthogonal": {"activation": "relu", "init": "orthogonal"},
}


def run(config: dict, seed: int, device: str = "cpu", data_dir=None) -> RunResult:
    """``||dL/dh_t||`` at initialization for one (model, seed) (the runner's ``run`` for kind
    ``"time-lag"``).

    ``config``: ``T``, ``hidden``, ``batch``, ``activation``, ``init``, optional ``scale`` and
    ``input_std``. ``seed`` drives the weights; the batch of adding-problem sequences is the same
    for every run (generator seed 0). Float64 on ``device``.
    """
    t0 = time.perf_counter()
    T, hidden, batch = int(config["T"]), int(config["hidden"]), int(config["batch"])
    x, y = adding_problem(batch, T, torch.Generator().manual_seed(0))
    kw = {k: config[k] for k in ("scale", "input_std") if config.get(k) is not None}
    model = RNNRegressor(
        2,
        hidden,
        activation=config["activation"],
        init=config["init"],
        generator=torch.Generator().manual_seed(int(seed)),
        **kw,
    ).to(device, torch.float64)
    norms = time_lag_gradient_norms(
        model, x.to(device, torch.float64), y.to(device, torch.float64)
    )  # (T,), index T-1 = the last step
    by_lag = norms.flip(0).cpu()  # (T,): index k = lag k = ||dL/dh_{T-k}||
    finite = bool(torch.isfinite(by_lag).all()) and float(by_lag[-1]) > 0
    log_ratio = math.log10(float(by_lag[-1] / by_lag[0])) if finite else math.nan
    final = {
        "log10_ratio": log_ratio,  # log10 ||dL/dh_1|| / ||dL/dh_T||
        "per_step_factor": 10 ** (log_ratio / (T - 1)) if finite else math.nan,
        "last_norm": float(by_lag[0]),
    }
    extra = {"norms_by_lag": [float(v) if math.isfinite(v) else None for v in by_lag.tolist()]}
    status = "done" if finite else "diverged"
    msg = "" if finite else "a norm is zero or not finite (underflow/overflow in float64)"
    return RunResult(status, final, [], extra, message=msg, seconds=time.perf_counter() - t0)


def variants(scale: str) -> list[Variant]:
    base = (
        {"T": 200, "hidden": 100, "batch": 64}
        if scale == "quick"
        else {
            "T": 784,
            "hidden": 100,
            "batch": 128,
        }
    )
    return [Variant(name, {**base, **opts}, kind="time-lag") for name, opts in MODELS.items()]


def _style(name: str) -> dict:
    i = list(MODELS).index(name) if name in MODELS else 0
    return {"color": f"C{i}", "ls": "-" if "orthogonal" not in name else "--"}


def figures(results, out_dir: str) -> list[Figure]:
    import numpy as np

    from smithing.plots import plt, save

    p = plt()
    fig, ax = p.subplots(figsize=(8.0, 4.8))
    for v in results.variants():
        curves = []
        for r in results.of(v):
            vals = r.extra.get("norms_by_lag")
            if not vals:
                continue
            a = np.array([np.nan if x is None else x for x in vals], dtype=float)
            with np.errstate(all="ignore"):
                curves.append(a / a[0])  # relative to the last step (lag 0)
        if not curves:
            continue
        c = np.array(curves)  # (seeds, T)
        c[~(c > 0)] = np.nan
        with np.errstate(all="ignore"):
            logc = np.log10(c)
            mid = 10 ** np.nanmean(logc, axis=0)  # geometric mean over seeds
            lo, hi = 10 ** np.nanmin(logc, axis=0), 10 ** np.nanmax(logc, axis=0)
        lag = np.arange(c.shape[1])
        st = _style(v)
        lw = 3.0 if v.startswith("IRNN") else 1.8  # drawn under the tanh orthogonal line
        ax.plot(lag, mid, lw=lw, label=f"{v} ({c.shape[0]} seeds)", **st)
        ax.fill_between(lag, lo, hi, color=st["color"], alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("time lag T - t (steps before the last)")
    ax.set_ylabel("||dL/dh_t|| / ||dL/dh_T||")
    T = max((int(r.config["T"]) for r in results.runs), default=0)
    H = max((int(r.config["hidden"]) for r in results.runs), default=0)
    ax.set_title(f"Gradient norm through time at initialization (T = {T}, {H} hidden units)")
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    fig.tight_layout()
    return [
        Figure(
            save(fig, out_dir, "time_lag.png"),
            "||dL/dh_t|| against the distance T - t from the end, relative to the last step, "
            "log scale: geometric mean over seeds, band = min..max over seeds. Straight lines "
            "on the log scale are geometric vanishing (down) or exploding (up); the IRNN and "
            "the tanh orthogonal RNN stay flat.",
        )
    ]


def table(results) -> Table:
    rows = []
    for v in results.variants():
        mean, std, _, n = mean_std_ci(results.finals(v, "log10_ratio"))
        fac, _, _, _ = mean_std_ci(results.finals(v, "per_step_factor"))
        runs = results.of(v)
        bad = sum(r.status != "done" for r in runs)
        rows.append(
            [
                v,
                f"{mean:+.1f} ± {std:.1f}" if n else "n/a",
                f"{fac:.4f}" if n else "n/a",
                f"{n}/{len(runs)}" + (f" ({bad} over/underflowed)" if bad else ""),
            ]
        )
    return Table(
        ["variant", "log10 ||dL/dh_1|| / ||dL/dh_T||", "per-step factor", "runs"],
        rows,
        "Decades gained (+) or lost (-) by the gradient between the last and the first step "
        "(mean ± std over seeds), and the equivalent constant factor per step.",
    )


REFERENCES = unwrap_paragraphs("""
Bengio, Simard & Frasconi 1994 (IEEE TNN 5(2)) and Pascanu, Mikolov & Bengio 2013 (ICML),
section 2.1: with a bounded derivative `|f'| <= gamma`, the gradient vanishes through time
when the largest singular value of `W_hh` is below `1 / gamma` (sufficient condition), and
can explode when the spectral radius is above `1 / gamma` (necessary condition): `gamma = 1`
for tanh and relu.

Le, Jaitly & Hinton 2015 (arXiv:1504.00941): initializing `W_hh = I` with relu units makes the
RNN copy its state at the start, so gradients neither vanish nor explode at initialization.
Saxe, McClelland & Ganguli 2014 (ICLR): orthogonal matrices are isometries (all singular values
1). No numbers to reproduce: the figure is the point.
""")

STUDY = register(
    Study(
        name="rnn-gradients",
        metric="log10_ratio",
        metric_percent=False,
        description="gradient norm vs time lag at initialization: tanh / relu with Gaussian, "
        "identity (IRNN) and orthogonal recurrent weights",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 5, "paper": 10},
        datasets={"quick": "adding", "paper": "adding"},
        run=run,
        references=REFERENCES,
    )
)
