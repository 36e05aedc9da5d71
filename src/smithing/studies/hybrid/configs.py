"""The hybrid study's settings and variants per scale: the classification RBM's objectives and
alphas, the labeled subsets of the semi-supervised runs, the deep hybrid stack and the DBN."""

from __future__ import annotations

from smithing.experiment import (
    Variant,
)

__all__ = [
    "ALPHAS",
    "BASE",
    "DEEP",
    "LABELS",
    "PAPER",
    "SEMI",
    "TRAIN_KEYS",
    "hybrid_name",
    "variants",
]


ALPHAS = {"quick": (0.01, 0.1, 1.0), "paper": (0.001, 0.01, 0.1)}
LABELS = {"quick": (50, 100, 200, 500), "paper": (100, 600, 1000, 3000)}

BASE = {
    "quick": {
        "hidden": 100,
        "lr": 0.1,
        "momentum": 0.9,
        "epochs": 30,
        "batch_size": 50,
        "k": 1,
        "method": "cd",
    },
    "paper": {
        "hidden": 1500,
        "lr": 0.05,  # the recalled learning rate of the discriminative and hybrid models (U)
        "momentum": 0.9,
        "epochs": 30,
        "batch_size": 20,
        "k": 1,
        "method": "cd",
    },
}
SEMI = {"quick": {"alpha": 0.01, "beta": 1.0}, "paper": {"alpha": 0.01, "beta": 0.1}}
DEEP = {"quick": [100, 100], "paper": [500, 500]}

#: Larochelle & Bengio 2008, MNIST test error (%): unverified recollection (REFERENCES.md, U)
PAPER = {"generative": 3.39, "discriminative": 1.81, "hybrid": 1.28}

#: training options of ``smithing.pretrain.hybrid.HybridTraining`` read from a run's config
TRAIN_KEYS = ("objective", "alpha", "beta", "lr", "momentum", "epochs", "batch_size", "k")
TRAIN_KEYS += ("method", "unlabeled_positive", "weight_decay", "steps_per_epoch")


def hybrid_name(alpha: float) -> str:
    return f"hybrid a={alpha:g}"


def variants(scale: str) -> list[Variant]:
    """The study's variants; each config names its kind under ``"run"`` too (for ``run``)."""
    return [Variant(v.name, {**v.config, "run": v.kind}, v.kind) for v in _variants(scale)]


def _variants(scale: str) -> list[Variant]:
    base = BASE[scale]
    out = [
        Variant(
            "generative",
            {
                **base,
                "objective": "generative",
                **({"hidden": 6000, "lr": 0.005} if scale == "paper" else {}),
            },
            "classrbm",
        ),  # fmt: skip
        Variant(
            "discriminative",
            {
                **base,
                "objective": "discriminative",
                **({"hidden": 500} if scale == "paper" else {}),
            },
            "classrbm",
        ),  # fmt: skip
    ]
    for a in ALPHAS[scale]:
        out.append(Variant(hybrid_name(a), {**base, "objective": "hybrid", "alpha": a}, "classrbm"))
    deep = {**base, "hidden": DEEP[scale], "objective": "hybrid", "alpha": SEMI[scale]["alpha"]}
    out.append(Variant("deep hybrid", {**deep, "combine": "top"}, "deep-hybrid"))
    dbn = {
        "hidden": DEEP[scale],
        "pretrain_epochs": 20 if scale == "quick" else 50,
        "pretrain_lr": 0.05,
        "epochs": base["epochs"],
        "lr": 0.1,
        "batch_size": base["batch_size"],
    }
    out.append(Variant("DBN + fine-tune", dbn, "dbn"))
    semi = {**base, "objective": "hybrid", **SEMI[scale], "full_epoch_steps": True}
    for n in LABELS[scale]:
        out.append(Variant(f"sup n={n}", {**semi, "n_labels": n, "semi": False}, "classrbm"))
        out.append(Variant(f"semi n={n}", {**semi, "n_labels": n, "semi": True}, "classrbm"))
    return out
