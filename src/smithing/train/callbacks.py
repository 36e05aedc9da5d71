"""Early stopping: :class:`~smithing.callbacks.EarlyStopping` lives in the core module
:mod:`smithing.callbacks`, below :mod:`smithing.train` and :mod:`smithing.pretrain` (whose
trainers take it too); this name stays for existing imports."""

from smithing.callbacks import MONITORS, EarlyStopping

__all__ = ["MONITORS", "EarlyStopping"]
