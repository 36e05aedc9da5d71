"""What a training run leaves behind: per-epoch curves, how it ended, the final metrics."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

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
