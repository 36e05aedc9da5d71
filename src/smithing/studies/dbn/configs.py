"""The dbn study's configurations: defaults, the variants per scale (the paper's rows), and
resolving a run's config."""

from __future__ import annotations

from smithing._registry import check
from smithing.experiment import (
    Variant,
)

__all__ = [
    "DEFAULTS",
    "PAPER",
    "resolve_config",
    "variants",
]


DEFAULTS: dict = {
    "dataset": "digits",
    "seed": 0,
    "n_train": None,
    "hidden": [100, 100],
    "pretrain": True,
    # pretraining (every RBM): train_rbm keyword arguments
    "pretrain_epochs": 10,
    "pretrain_lr": 0.05,
    "pretrain_batch_size": 20,
    "pretrain_momentum": "hinton",
    "pretrain_weight_decay": 2e-4,
    "pretrain_k": 1,
    "pretrain_method": "cd",
    "propagate": "probs",
    # the RBMs' starting point and negative phase (the defaults: Hinton's guide; the paper
    # scale sets Hinton & Salakhutdinov's code: N(0, 0.1^2), zero biases, visible means)
    "init_std": 0.01,  # RBM weights ~ N(0, init_std^2)
    "visible_bias": "logit",  # "logit": b = logit(mean input) (guide, Sec. 8), or "zero"
    "negative_visible": "sample",  # train_rbm's: sampled visible states, or "mean" (probs)
    # random initialization of the no-pretraining net (smithing.init names)
    "random_init": "glorot_uniform",
    "random_init_gain": 4.0,
    "output_init": "zeros",  # an OUTPUT_INITS name, or "randn": W, b ~ N(0, output_init_std^2)
    "output_init_std": 0.1,  # used by output_init="randn" (backpropclassify.m: 0.1*randn)
    # fine-tuning: smithing.train.fit ("momentum": SGD with momentum 0.9)
    "optimizer": "momentum",
    "optimizer_options": {},
    "lr": 0.05,
    "epochs": 40,
    "batch_size": 10,
    "patience": 10,  # the tutorials' initial patience budget, in epochs
    "improvement_threshold": 0.995,
    # what the run keeps for the figures
    "n_filters": 100,
    "n_samples": 100,
    "sample_steps": 1000,
}

PAPER = [
    ("Hinton & Salakhutdinov 2006: 784-500-500-2000, CD-1 + backprop (C)", "1.2"),
    ("Hinton, Osindero & Teh 2006: same stack, up-down fine-tuning (C)", "1.25"),
    ("Theano DBN tutorial: 3 x 1000, CD-1 + SGD (V)", "1.34"),
]


def variants(scale: str) -> list[Variant]:
    if scale == "quick":
        base: dict = {}  # the defaults
    else:
        base = {
            # pretraining: Hinton & Salakhutdinov's mnistclassify.m / rbm.m (C, RECIPES 1b)
            "hidden": [500, 500, 2000],
            "pretrain_epochs": 50,
            "pretrain_lr": 0.1,  # weights, visible and hidden biases
            "pretrain_batch_size": 100,
            "pretrain_momentum": "hinton",  # 0.5 for epochs 1-5, then 0.9
            "pretrain_weight_decay": 2e-4,  # on the weights only
            "pretrain_k": 1,
            "pretrain_method": "cd",
            "propagate": "probs",  # the hidden probabilities feed the next RBM
            "init_std": 0.1,  # 0.1*randn
            "visible_bias": "zero",  # both bias vectors start at zero
            "negative_visible": "mean",  # negdata: the visible probabilities, not sampled
            # fine-tuning: SGD instead of the code's conjugate gradients (a departure, see
            # REFERENCES): plain SGD, lr 0.1, batch 10 (the Theano DBN tutorial's), at most
            # the code's 200 epochs, the tutorials' patience rule on the validation error;
            # softmax weights and biases N(0, 0.1^2) as in backpropclassify.m
            "optimizer": "sgd",
            "optimizer_options": {},
            "lr": 0.1,
            "epochs": 200,
            "batch_size": 10,
            "patience": 10,
            "improvement_threshold": 0.995,
            "output_init": "randn",
            "output_init_std": 0.1,
        }
    full = {k: v for k, v in {**DEFAULTS, **base}.items() if k not in ("dataset", "seed")}
    return [
        Variant("dbn-pretrained", {**full, "pretrain": True}, kind="dbn"),
        Variant("no-pretraining", {**full, "pretrain": False}, kind="dbn"),
    ]


def resolve_config(config: dict) -> dict:
    """``config`` over :data:`DEFAULTS`; unknown keys and bad values raise ``ValueError``."""
    from smithing.pretrain.greedy import OUTPUT_INITS

    unknown = sorted(set(config) - set(DEFAULTS))
    check(not unknown, "config", unknown, f"keys among {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    hidden = cfg["hidden"]
    check(
        len(hidden) > 0 and all(isinstance(h, int) and h > 0 for h in hidden),
        "hidden",
        hidden,
        "a non-empty list of positive ints",
    )
    check(
        isinstance(cfg["init_std"], (int, float)) and cfg["init_std"] > 0,
        "init_std",
        cfg["init_std"],
        "a positive number",
    )
    vb = cfg["visible_bias"]
    check(vb in ("logit", "zero"), "visible_bias", vb, "'logit' or 'zero'")
    nv = cfg["negative_visible"]
    check(nv in ("sample", "mean"), "negative_visible", nv, "'sample' or 'mean'")
    out = cfg["output_init"]
    check(
        out == "randn" or out in OUTPUT_INITS,
        "output_init",
        out,
        f"'randn' or one of {OUTPUT_INITS.names()}",
    )
    check(
        isinstance(cfg["output_init_std"], (int, float)) and cfg["output_init_std"] > 0,
        "output_init_std",
        cfg["output_init_std"],
        "a positive number",
    )
    check(
        isinstance(cfg["sample_steps"], int) and cfg["sample_steps"] >= 1,
        "sample_steps",
        cfg["sample_steps"],
        "an int >= 1",
    )
    return cfg
