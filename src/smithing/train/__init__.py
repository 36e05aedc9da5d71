"""Training core: ``fit`` one model, ``fit_ensemble`` many same-shape models at once,
``fit_sequence`` a sequence model by steps; the gradient-flow diagnostics.

Batches are index slices of device-resident tensors (no DataLoader on the hot path); every
epoch (``fit``) or every ``eval_every`` steps (``fit_sequence``) evaluates on the held-out
splits; the result is a :class:`History`.
"""

from smithing.callbacks import EarlyStopping
from smithing.checkpoint import Checkpointer, CheckpointError
from smithing.history import History
from smithing.train.clipping import ClipReport, clip_grad_norm, clip_grad_value
from smithing.train.diagnostics import GradientMonitor, activation_stats, layer_gradient_norms
from smithing.train.gradient_flow import (
    gradient_flow,
    hidden_activations,
    log_abs_histogram,
    signal_variances,
    time_lag_gradient_norms,
)
from smithing.train.loop import evaluate, fit, seed_everything
from smithing.train.sequence import fit_sequence

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "ClipReport",
    "EarlyStopping",
    "GradientMonitor",
    "activation_stats",
    "clip_grad_norm",
    "clip_grad_value",
    "layer_gradient_norms",
    "History",
    "evaluate",
    "fit",
    "fit_ensemble",
    "fit_sequence",
    "gradient_flow",
    "hidden_activations",
    "log_abs_histogram",
    "seed_everything",
    "signal_variances",
    "time_lag_gradient_norms",
]


def __getattr__(name):  # lazy: the ensemble trainer imports torch.func
    if name == "fit_ensemble":
        from smithing.train.ensemble import fit_ensemble

        return fit_ensemble
    raise AttributeError(name)
