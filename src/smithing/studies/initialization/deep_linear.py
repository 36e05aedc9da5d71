"""Deep linear networks (Saxe, McClelland & Ganguli 2014): orthogonal vs scaled Gaussian weights,
trained until the loss falls below ``THRESHOLD`` of the zero predictor's; the study's run kind
:data:`KIND`."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from smithing.experiment import (
    RunResult,
)
from smithing.studies.initialization.configs import (
    LINEAR_INITS,
    LINEAR_LRS,
    THRESHOLD,
)

__all__ = [
    "deep_linear_run",
    "deep_linear_weights",
    "run",
    "train_deep_linear",
]


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
