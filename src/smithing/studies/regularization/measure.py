"""Per-run measurements of the regularization study: first-layer weight histograms (every run's
extras) and the ``"dropconnect"`` run kind."""

from __future__ import annotations

import time

import numpy as np
import torch

from smithing.experiment import RunResult
from smithing.studies.regularization.configs import (
    LOG_EDGES,
    W_EDGES,
)

__all__ = [
    "extract",
    "run",
    "weight_histograms",
]


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
