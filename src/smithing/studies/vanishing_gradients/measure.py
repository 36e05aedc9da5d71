"""The run kind ``gradient-flow``: train one network and measure per-layer gradients and
activations at initialization and at every epoch end."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import replace

import torch
from torch import nn

from smithing.experiment import (
    RunResult,
)
from smithing.studies.vanishing_gradients.configs import (
    BINS,
    DIAG_BATCH,
    LOG_GRAD_EDGES,
    STEP_LOSSES,
)
from smithing.train.gradient_flow import gradient_flow

__all__ = [
    "diagnose",
    "run",
]

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
