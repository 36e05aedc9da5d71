"""The initialization study's initializers and variants per scale (the deep tanh MLP and the
deep linear nets)."""

from __future__ import annotations

import math

from smithing.experiment import (
    Variant,
)

__all__ = [
    "INITS",
    "KIND",
    "LINEAR_INITS",
    "LINEAR_LRS",
    "PAPER",
    "THRESHOLD",
    "VARIANCE_BATCH",
    "variants",
]


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
