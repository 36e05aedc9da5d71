"""The settings of the hybrid trainers, :class:`HybridTraining` (objective, batches, negative
phase, model selection), checked when made."""

from __future__ import annotations

import math
from dataclasses import dataclass

from smithing._registry import check
from smithing.pretrain.hybrid.functional import OBJECTIVES

__all__ = ["HybridTraining"]


@dataclass(frozen=True)
class HybridTraining:
    """The settings of :func:`train_class_rbm` and :func:`train_deep_hybrid`.

    Objective (see the module docstring): ``objective`` is ``"generative"`` (``log p(y, x)`` by
    CD-k / PCD), ``"discriminative"`` (exact ``log p(y | x)``) or ``"hybrid"``
    (``log p(y | x) + alpha log p(y, x)``); unlabeled inputs add ``beta log p(x)``
    (semi-supervised; ``unlabeled_positive`` picks the positive-phase estimator, ``"sample"``
    or ``"expected"``). With the trainers' default ``optimizer="sgd"`` the update is SGD on the
    batch-mean gradient ``g``: ``smithing.optim``'s ``"momentum"`` (``torch.optim.SGD``) at
    ``lr=1`` with ``momentum``, fed ``.grad = -lr * schedule(epoch) * g`` (the delta form of
    :func:`smithing.pretrain.rbm.train_rbm`); another optimizer is stepped on ``.grad = -g``
    with its own learning rate (``momentum`` must then be 0). ``weight_decay`` is an L2
    penalty on ``W`` and ``U``. ``lr`` may be one rate per layer (deep model).

    Batches: every step takes ``batch_size`` labeled examples and, given unlabeled data,
    ``unlabeled_batch_size`` (default ``batch_size``) unlabeled ones, each from its own stream
    of concatenated random permutations; an epoch is ``steps_per_epoch`` steps (default: one
    pass over the larger set). Without unlabeled data and with ``n`` a multiple of
    ``batch_size`` an epoch is one ordinary pass over a fresh permutation.

    Negative phase: ``k`` Gibbs sweeps from the data (``method="cd"``) or of ``n_chains``
    (default ``batch_size``) persistent joint chains per layer (``"pcd"``, started at random
    labeled examples, shared by the generative and unlabeled terms); negative visibles are
    the sampled states or their means (``negative_visible``).

    Model selection: given validation data, the parameters of the epoch with the lowest
    validation error (ties: loss) are restored at the end (``restore_best``);
    ``early_stopping_patience`` stops after that many epochs without improvement (the trainers'
    ``early_stopping=`` takes an :class:`~smithing.callbacks.EarlyStopping` instead). The
    per-epoch metrics use the first ``monitor_size`` labeled training examples.
    """

    objective: str = "hybrid"
    alpha: float = 0.01
    beta: float = 0.1
    epochs: int = 10
    batch_size: int = 20
    unlabeled_batch_size: int | None = None
    steps_per_epoch: int | None = None
    lr: float | tuple[float, ...] = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    method: str = "cd"
    k: int = 1
    n_chains: int | None = None
    negative_visible: str = "sample"
    unlabeled_positive: str = "sample"
    early_stopping_patience: int | None = None
    restore_best: bool = True
    monitor_size: int = 1000

    def __post_init__(self) -> None:
        check(
            self.objective in OBJECTIVES, "objective", self.objective, f"one of {tuple(OBJECTIVES)}"
        )
        for name in ("alpha", "beta", "weight_decay"):
            v = getattr(self, name)
            check(isinstance(v, (int, float)) and v >= 0, name, v, "a non-negative number")
        for name in ("epochs", "batch_size", "k", "monitor_size"):
            v, lo = getattr(self, name), 0 if name == "epochs" else 1
            check(isinstance(v, int) and v >= lo, name, v, f"an int >= {lo}")
        for name in ("unlabeled_batch_size", "steps_per_epoch", "n_chains"):
            v = getattr(self, name)
            check(v is None or (isinstance(v, int) and v > 0), name, v, "None or a positive int")
        p = self.early_stopping_patience
        check(
            p is None or (isinstance(p, int) and p >= 0),
            "early_stopping_patience",
            p,
            "None or an int >= 0",
        )
        lrs = (self.lr,) if isinstance(self.lr, (int, float)) else tuple(self.lr)
        check(
            len(lrs) > 0 and all(v > 0 and math.isfinite(v) for v in lrs),
            "lr",
            self.lr,
            "a positive number or a sequence of them (one per layer)",
        )
        check(0.0 <= self.momentum < 1.0, "momentum", self.momentum, "a number in [0, 1)")
        check(self.method in ("cd", "pcd"), "method", self.method, "'cd' or 'pcd'")
        for name in ("negative_visible", "unlabeled_positive"):
            allowed = ("sample", "mean") if name == "negative_visible" else ("sample", "expected")
            v = getattr(self, name)
            check(v in allowed, name, v, f"one of {allowed}")

    @classmethod
    def from_options(cls, options: dict) -> HybridTraining:
        """``HybridTraining(**options)`` with an unknown name reported as a ValueError."""
        valid = tuple(cls.__dataclass_fields__)
        for name in options:
            check(name in valid, "option", name, f"one of {valid}")
        return cls(**options)
