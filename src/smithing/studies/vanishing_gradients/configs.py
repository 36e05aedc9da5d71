"""The study's variants: which networks, initializers and clipping settings it compares."""

from __future__ import annotations

import numpy as np

from smithing.experiment import (
    Variant,
)

__all__ = [
    "BINS",
    "COLORS",
    "DIAG_BATCH",
    "EXPLODING",
    "GOOD",
    "KIND",
    "LOG_GRAD_EDGES",
    "LONG",
    "MAIN",
    "OWN_KEYS",
    "STEP_LOSSES",
    "VARIANTS",
    "variants",
]

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
