"""What a training run leaves behind: :class:`~smithing.history.History` (it lives in the core
module :mod:`smithing.history`, below both :mod:`smithing.train` and :mod:`smithing.pretrain`;
this name stays for existing imports)."""

from smithing.history import STATUSES, STOP_REASONS, History

__all__ = ["STATUSES", "STOP_REASONS", "History"]
