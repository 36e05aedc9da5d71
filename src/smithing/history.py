"""What a training run leaves behind, and the trainers' shared vocabulary.

:class:`History` (per-epoch records, how the run ended, the final metrics) is what every
trainer returns: :func:`smithing.train.fit`, ``fit_ensemble`` (one per member),
``fit_sequence``, :func:`smithing.pretrain.rbm.train_rbm`,
:func:`smithing.pretrain.autoencoder.train_autoencoder`,
:func:`smithing.pretrain.hybrid.train_class_rbm` / ``train_deep_hybrid``, and one per layer
from :func:`smithing.pretrain.dbn.train_dbn` / :func:`smithing.pretrain.autoencoder.train_sda`.
This module sits in the core, below :mod:`smithing.train` and :mod:`smithing.pretrain`, with the
small pieces of the vocabulary they share: the per-epoch ``callbacks`` protocol
(:func:`run_callbacks`) and the deprecated names that still work (:func:`renamed`,
:func:`legacy_callback`).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

__all__ = [
    "STATUSES",
    "STOP_REASONS",
    "History",
    "Callback",
    "run_callbacks",
    "renamed",
    "legacy_callback",
]

STATUSES = ("done", "diverged")
#: what ended a run: the epoch (or, for ``fit_sequence``, step) limit, early stopping, a
#: callback, or divergence
STOP_REASONS = ("max_epochs", "max_steps", "patience", "callback", "diverged")


@dataclass
class History:
    """Per-epoch metrics and the outcome of one run.

    ``epochs`` holds one dict per epoch with ``epoch`` (1-based), ``train_loss``,
    ``valid_loss``, ``valid_error``, ``lr`` and ``seconds`` (cumulative wall time), plus any
    extra metric a callback adds. ``status`` is ``"done"`` or ``"diverged"``; ``stop_reason``
    says what ended training (``"max_epochs"``, ``"patience"``: early stopping, ``"callback"``:
    a user callback returned True, or ``"diverged"``; ``fit_sequence`` says ``"max_steps"``);
    ``best_epoch`` is the epoch whose weights the model holds at the end when early stopping
    restored them (else the last epoch). ``final`` holds the end-of-run metrics
    (``train_loss``, ``train_error``, ``valid_loss``, ``valid_error``, ``test_loss``,
    ``test_error``), measured on the weights the model holds at the end.

    The pretraining trainers fill the same fields with their own per-epoch metrics (e.g.
    ``recon_error``, ``free_energy_train`` for an RBM; ``loss``, ``recon_loss`` for an
    autoencoder); their ``final`` is empty. ``config`` holds the run's settings (and
    trainer-specific facts such as the hybrid trainers' ``steps_per_epoch``).

    ``history[key]`` (read-only) is the per-epoch list ``[e[key] for e in history.epochs]``:
    ``hist["recon_error"]`` is the curve the pretraining trainers' dicts used to hold under
    that key (a ``KeyError`` names the keys there are). ``key in history`` asks whether the
    records hold ``key``.
    """

    epochs: list[dict] = field(default_factory=list)
    status: str = "done"
    stop_reason: str = "max_epochs"
    message: str = ""
    best_epoch: int | None = None
    final: dict = field(default_factory=dict)
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    @property
    def epochs_run(self) -> int:
        return len(self.epochs)

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason == "patience"

    def __getitem__(self, key: str) -> list:
        """The per-epoch values of ``key``: ``[e[key] for e in self.epochs]`` (read-only)."""
        if not isinstance(key, str):
            raise TypeError(f"History keys are metric names (str), got {type(key).__name__}")
        if self.epochs and not all(key in e for e in self.epochs):
            raise KeyError(f"{key!r}: the per-epoch records hold {sorted(self.keys())}")
        return [e[key] for e in self.epochs]

    def __contains__(self, key: object) -> bool:
        return bool(self.epochs) and all(key in e for e in self.epochs)

    def keys(self) -> list[str]:
        """The metric names every per-epoch record holds, in the first record's order."""
        if not self.epochs:
            return []
        return [k for k in self.epochs[0] if all(k in e for e in self.epochs)]

    def curve(self, key: str) -> list[float]:
        return [float(e.get(key, math.nan)) for e in self.epochs]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["epochs_run"] = self.epochs_run
        d["stopped_early"] = self.stopped_early
        return d

    @classmethod
    def from_dict(cls, d: dict) -> History:
        keys = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in keys})

    _STATE = ("epochs", "status", "stop_reason", "message", "best_epoch")

    def state_dict(self) -> dict:
        """The run so far (per-epoch records and how it stands), for a checkpoint."""
        return {k: copy.deepcopy(getattr(self, k)) for k in self._STATE}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (``final``, ``seconds``, ``config`` stay)."""
        for k in self._STATE:
            setattr(self, k, copy.deepcopy(state[k]))

    def summary(self) -> dict:
        """The flat dict ``smithing train --json`` prints."""
        out = {
            "status": self.status,
            "stop_reason": self.stop_reason,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 3),
        }
        out.update({k: _clean(v) for k, v in self.final.items()})
        if self.message:
            out["message"] = self.message
        return out


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# ------------------------------------------------------------------ the shared vocabulary

#: a per-epoch callback: ``cb(epoch, record, model)`` after each epoch (1-based ``epoch``, the
#: record just appended to ``History.epochs``); a truthy return stops training
Callback = Callable[[int, dict, object], object]


def run_callbacks(callbacks: Sequence[Callback], epoch: int, record: dict, model) -> bool:
    """Call every callback (all of them, in order) and say whether any asked to stop."""
    stop = False
    for cb in callbacks:
        stop = bool(cb(epoch, record, model)) or stop
    return stop


def renamed(
    trainer: str, old: str, old_value, new: str, new_value, default=None, *, stacklevel: int = 3
):
    """The value of a renamed keyword argument: ``new_value``, or (with a
    ``DeprecationWarning``) ``old_value`` when only the old name was given; both raises."""
    if old_value is None:
        return new_value
    if new_value is not default:
        raise ValueError(f"{trainer}: give {new}= or its deprecated alias {old}=, not both")
    warnings.warn(
        f"{trainer}({old}=...) is deprecated; use {new}= instead",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return old_value


def legacy_callback(
    trainer: str,
    callback: Callable[[int, dict], object] | None,
    callbacks,
    *,
    offset: int = 0,
    stacklevel: int = 3,
) -> list:
    """``callbacks`` as a list, plus the deprecated single ``callback(epoch, record)`` (with a
    ``DeprecationWarning``) wrapped as ``cb(epoch, record, model)``; it still sees the epoch
    numbering it saw before (``epoch - offset``: ``offset=1`` for the trainers that used to
    count from 0)."""
    out = list(callbacks or ())
    if callback is not None:
        warnings.warn(
            f"{trainer}(callback=f) is deprecated; use callbacks=[g] with "
            "g(epoch, record, model) (1-based epoch) instead",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        out.append(lambda epoch, record, model: callback(epoch - offset, record))
    return out
