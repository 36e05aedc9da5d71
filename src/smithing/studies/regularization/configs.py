"""The regularization study's variants at each scale, the strengths chosen on validation, and the
bins of the stored weight histograms."""

from __future__ import annotations

import numpy as np

from smithing.experiment import Variant

__all__ = [
    "L1",
    "L2",
    "LOG_EDGES",
    "MAX_NORM",
    "W_EDGES",
    "variants",
]

#: log10 |w| bin edges of the stored first-layer weight histogram (|w| < 1e-6 in the first bin)
LOG_EDGES = np.linspace(-6.0, 1.0, 57)
#: w bin edges (values outside are clipped into the end bins)
W_EDGES = np.linspace(-1.5, 1.5, 61)

# chosen on the validation split (quick scale; see the module docstring)
L2, L1, MAX_NORM = 1.0, 0.1, 1.0


def _quick_variants() -> list[Variant]:
    base = {
        "hidden": [256, 256],
        "activation": "relu",
        "optimizer": "momentum",
        "lr": 0.05,
        "momentum": 0.9,
        "epochs": 60,
        "batch_size": 32,
        "n_train": 500,
        "eval_train": True,
    }
    drop = {"dropout": 0.5}  # no input dropout: see the module docstring
    return [
        Variant("none", base),
        Variant("L2", {**base, "l2": L2}),
        Variant("L1", {**base, "l1": L1}),
        Variant("elastic net", {**base, "l2": L2 / 2, "l1": L1 / 2}),
        Variant("max-norm", {**base, "max_norm": MAX_NORM}),
        Variant("dropout", {**base, **drop}),
        Variant("dropout + max-norm", {**base, **drop, "max_norm": MAX_NORM}),
        Variant(
            "DropConnect",
            {
                **base,
                "dropconnect": 0.5,
                "dropconnect_options": {"per_example": False, "samples": 100},
            },
            kind="dropconnect",
        ),
    ]


def _paper_variants() -> list[Variant]:
    # Srivastava et al. 2014, Table 9 / Appendix B.1 (recipe U: see REFERENCES.md). ~1e6
    # weight updates in the paper; 200 epochs of 500 updates here (1e5).
    t9 = {
        "dataset": "mnist",
        "hidden": [1024, 1024, 2048],
        "activation": "relu",
        "optimizer": "momentum",
        "momentum": 0.95,
        "lr": 0.01,
        "schedule": "exponential",
        "schedule_options": {"gamma": 0.99},
        "epochs": 200,
        "batch_size": 100,
        "eval_train": True,
    }
    # Appendix A's advice (10-100x the learning rate with dropout) failed here: at lr 0.1 with
    # momentum 0.95 "dropout + L2" stayed at chance and "dropout + max-norm" at 29 % train
    # error after 10 epochs (reduced run of 2026-11-25, docs/RESULTS.md); every row uses 0.01
    drop = {"input_dropout": 0.2, "dropout": 0.5}
    # Wan et al. 2013, MNIST without augmentation (recipe U)
    wan = {
        "dataset": "mnist",
        "hidden": [800, 800],
        "activation": "relu",
        "optimizer": "momentum",
        "momentum": 0.9,
        "lr": 0.01,
        "schedule": "exponential",
        "schedule_options": {"gamma": 0.99},
        "epochs": 200,
        "batch_size": 128,
        "eval_train": True,
    }
    return [
        Variant("T9 L2", {**t9, "l2": 5.0}),
        Variant("T9 L2 + L1", {**t9, "l2": 5.0, "l1": 0.5}),
        Variant("T9 max-norm", {**t9, "max_norm": 3.5}),
        Variant("T9 dropout + L2", {**t9, **drop, "l2": 5.0}),
        Variant("T9 dropout + max-norm", {**t9, **drop, "max_norm": 3.5}),
        Variant("Wan no-drop", wan),
        Variant("Wan dropout", {**wan, "dropout": 0.5}),
        Variant(
            "Wan DropConnect",
            {**wan, "dropconnect": 0.5, "dropconnect_options": {"samples": 100}},
            kind="dropconnect",
        ),
    ]


def variants(scale: str) -> list[Variant]:
    return _quick_variants() if scale == "quick" else _paper_variants()
