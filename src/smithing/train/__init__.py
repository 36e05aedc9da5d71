"""Training core: ``fit`` one model, ``fit_ensemble`` many same-shape models at once.

Batches are index slices of device-resident tensors (no DataLoader on the hot path); every
epoch evaluates on the validation split; the result is a :class:`History`.
"""

from smithing.train.callbacks import EarlyStopping
from smithing.train.checkpoint import Checkpointer, CheckpointError
from smithing.train.history import History
from smithing.train.loop import evaluate, fit, seed_everything

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "EarlyStopping",
    "History",
    "evaluate",
    "fit",
    "fit_ensemble",
    "seed_everything",
]


def __getattr__(name):  # lazy: the ensemble trainer imports torch.func
    if name == "fit_ensemble":
        from smithing.train.ensemble import fit_ensemble

        return fit_ensemble
    raise AttributeError(name)
