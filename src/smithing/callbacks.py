"""Callbacks with the vocabulary users know: monitor, mode, patience, min_delta.

:class:`EarlyStopping` (Prechelt 1998, "Early stopping - but when?"; the Theano deep learning
tutorials' patience rule) decides from a validation metric when to stop and which epoch's
weights are the best; the trainers snapshot the weights when it reports an improvement and
ALWAYS restore the best ones when training ends, whatever ended it (patience, the epoch limit,
or divergence) when ``restore_best_weights`` is set. (Keras and Lightning restore only when
patience ends training: a long-standing bug this design avoids.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from smithing._registry import check

__all__ = ["MONITORS", "EarlyStopping"]

#: the metrics a trainer can watch: ``fit`` / ``fit_ensemble`` and the hybrid trainers record
#: ``valid_loss``, ``valid_error`` and ``train_loss``; ``train_autoencoder`` records
#: ``recon_loss_valid`` (and ``recon_loss``, on training inputs). Each trainer refuses up front a
#: monitor it does not record.
MONITORS = ("valid_loss", "valid_error", "train_loss", "recon_loss_valid", "recon_loss")


@dataclass
class EarlyStopping:
    r"""Stop when ``monitor`` has not improved for ``patience`` epochs.

    $$
    \text{improved}_t \iff s\, v_t < m_{t-1} - \delta, \qquad
    m_t = \min\left(m_{t-1}, s\, v_t\right) \text{ if improved}_t, \qquad
    \text{stop at } t \iff \neg\,\text{improved}_t \wedge w_t \ge P
    $$

    with $v_t$ the monitored value at epoch $t$, $s = 1$ (``mode="min"``) or $-1$ (``"max"``),
    $m_t$ the best (signed) value so far ($m_0 = \infty$), $\delta$ = ``min_delta``, $w_t$
    the epochs in a row without improvement and $P$ = ``patience``. With
    ``improvement_threshold`` $\tau$ (the Theano tutorials' rule) the budget $B_0 = P$ grows
    on each significant improvement and training stops when $t \ge B_t$:

    $$
    B_t = \max\left(B_{t-1}, \lceil \gamma t \rceil\right) \text{ if improved}_t \wedge
    s\, v_t < \tau\, m_{t-1}
    $$

    ($\gamma$ = ``patience_increase``; $\tau$ becomes $1/\tau$ when $m_{t-1} \le 0$). A
    non-finite value is neither an improvement nor a stop.

    Args:
        monitor: the per-epoch metric watched (``valid_loss``, ``valid_error``, ``train_loss``;
            ``recon_loss_valid`` / ``recon_loss`` for :func:`~smithing.pretrain.autoencoder.
            train_autoencoder`).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (min for losses and errors).
        patience: stop once ``patience`` epochs in a row brought no improvement, i.e.
            ``patience`` epochs after the best one; an epoch that improves never stops
            training. This is Keras' meaning (``keras.callbacks.EarlyStopping``, whose default
            is 0): ``patience=0`` stops at the first epoch without improvement, the same epoch
            as ``patience=1``. With
            ``improvement_threshold`` set, the Theano tutorials' rule is used instead:
            ``patience`` is the epoch budget, and each *significant* improvement (the new value
            below ``improvement_threshold * best``, e.g. 0.995) raises the budget to
            ``max(patience, patience_increase * epoch)``; training stops when the epoch reaches
            the budget.
        iterations_per_epoch: with ``improvement_threshold``, count ``patience`` and the budget
            in mini-batch updates as the tutorials' loop does (e.g. ``mlp.py``: patience 10000,
            2500 updates an epoch), not in epochs. The validation after epoch ``e`` is update
            ``it = iterations_per_epoch * e - 1`` (0-based); a significant improvement (the
            first validation always is: ``best`` starts at inf) raises the budget to
            ``max(budget, ceil(patience_increase * it))`` (rounding up changes no comparison
            with an update index); the loop breaks after the first update
            with ``budget <= it``, so training stops after epoch ``e`` unless
            ``budget > iterations_per_epoch * (e + 1) - 2`` (then the next validation, after
            update ``iterations_per_epoch * (e + 1) - 1``, still runs). (The
            tutorials break mid-epoch, after updates no later validation sees; we stop at the
            epoch's end: the weights kept and their test error are the same.) The tutorials
            validate every ``min(iterations_per_epoch, patience // 2)`` updates: once an epoch
            needs ``patience >= 2 * iterations_per_epoch``, which is checked. The epoch form
            (None) stops one epoch later after an improvement (at ``2 e`` instead of
            ``2 e - 1`` for ``patience_increase=2``).
        min_delta: an improvement must beat the best by more than this (absolute).
        improvement_threshold: $\tau \in (0, 1]$ for the Theano tutorials' rule, or ``None``
            (Keras' rule).
        patience_increase: $\gamma$, the budget's growth on a significant improvement.
        restore_best_weights: at the end of training, the model holds the best epoch's weights.

    Note:
        Keras and Lightning restore the best weights only when patience ends training; the
        trainers here restore them however training ends (module docstring).

    References:
        Prechelt, "Early stopping - but when?", in Neural Networks: Tricks of the Trade,
        Springer 1998, Sec. 2; the Theano deep learning tutorials' patience rule
        (``logistic_sgd.py``, ``mlp.py``).

    Examples:
        >>> stop = EarlyStopping(patience=2)
        >>> [stop.update(epoch, v) for epoch, v in enumerate([1.0, 0.9, 0.95, 0.93], start=1)]
        [(True, False), (True, False), (False, False), (False, True)]
    """

    monitor: str = "valid_loss"
    mode: str = "auto"
    patience: int = 5
    min_delta: float = 0.0
    improvement_threshold: float | None = None
    patience_increase: float = 2.0
    restore_best_weights: bool = True
    iterations_per_epoch: int | None = None

    def __post_init__(self) -> None:
        check(self.monitor in MONITORS, "monitor", self.monitor, f"one of {MONITORS}")
        check(self.mode in ("min", "max", "auto"), "mode", self.mode, "'min', 'max' or 'auto'")
        check(
            isinstance(self.patience, int) and self.patience >= 0,
            "patience",
            self.patience,
            "a non-negative int",
        )
        check(self.min_delta >= 0, "min_delta", self.min_delta, "a non-negative number")
        if self.improvement_threshold is not None:
            check(
                0 < self.improvement_threshold <= 1,
                "improvement_threshold",
                self.improvement_threshold,
                "a number in (0, 1]",
            )
        if self.iterations_per_epoch is not None:
            n = self.iterations_per_epoch
            check(isinstance(n, int) and n >= 1, "iterations_per_epoch", n, "a positive int")
            check(
                self.improvement_threshold is not None,
                "iterations_per_epoch",
                n,
                "None unless improvement_threshold is set (the tutorials' rule)",
            )
            check(
                self.patience >= 2 * n,
                "patience",
                self.patience,
                f"at least 2 * iterations_per_epoch = {2 * n} (the tutorials then validate "
                "once an epoch)",
            )
        self.reset()

    @property
    def sign(self) -> float:
        mode = self.mode if self.mode != "auto" else "min"
        return 1.0 if mode == "min" else -1.0

    def reset(self) -> None:
        self.best = math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self.budget = self.patience
        self.stopped_epoch: int | None = None

    def update(self, epoch: int, value: float) -> tuple[bool, bool]:
        """Record ``value`` at ``epoch`` (1-based); return ``(improved, should_stop)``."""
        v = self.sign * float(value)
        if not math.isfinite(v):
            return False, False  # divergence is the trainer's business
        improved = v < self.best - self.min_delta
        if self.iterations_per_epoch is not None:
            return self._update_iterations(epoch, v, improved)
        if improved:
            if (
                self.improvement_threshold is not None
                and math.isfinite(self.best)
                and v < self.best * self.improvement_threshold ** (1 if self.best > 0 else -1)
            ):
                self.budget = max(self.budget, int(math.ceil(self.patience_increase * epoch)))
            self.best, self.best_epoch, self.wait = v, epoch, 0
        else:
            self.wait += 1
        if self.improvement_threshold is not None:
            stop = epoch >= self.budget
        else:  # Keras: an improving epoch never stops; else stop after `patience` bad epochs
            stop = not improved and self.wait >= self.patience
        if stop:
            self.stopped_epoch = epoch
        return improved, stop

    def _update_iterations(self, epoch: int, v: float, improved: bool) -> tuple[bool, bool]:
        # the tutorials' loop (mlp.py, test_mlp), counted in updates
        n = self.iterations_per_epoch
        assert n is not None and self.improvement_threshold is not None
        it = n * epoch - 1  # 0-based index of the update this validation follows
        if improved:
            scale = self.improvement_threshold ** (1 if self.best > 0 else -1)
            if v < self.best * scale:  # inf * 0.995 = inf: the first validation counts
                # budget <= it  <=>  ceil(budget) <= it for an integer update index `it`
                self.budget = max(self.budget, math.ceil(self.patience_increase * it))
            self.best, self.best_epoch, self.wait = v, epoch, 0
        else:
            self.wait += 1
        # the loop breaks after the first update `it` with budget <= it: before the next
        # validation (update n (epoch + 1) - 1) unless budget > n (epoch + 1) - 2
        stop = self.budget <= n * (epoch + 1) - 2
        if stop:
            self.stopped_epoch = epoch
        return improved, stop

    @property
    def best_value(self) -> float:
        return self.sign * self.best

    _STATE = ("best", "best_epoch", "wait", "budget", "stopped_epoch")

    def state_dict(self) -> dict:
        """The mutable state (not the settings): what a checkpoint needs to continue."""
        return {k: getattr(self, k) for k in self._STATE}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        missing = [k for k in self._STATE if k not in state]
        if missing:
            raise ValueError(f"EarlyStopping state lacks {missing}; got keys {sorted(state)}")
        for k in self._STATE:
            setattr(self, k, state[k])
