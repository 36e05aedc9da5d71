"""Test helpers shared by the checkpoint tests: a training run that dies right after a given
checkpoint save, as a killed process would."""

from smithing.checkpoint import Checkpointer


class Interrupted(Exception):
    """Stands for the process dying (raised where a real run would be killed)."""


class CrashAfterSave(Checkpointer):
    """A :class:`Checkpointer` that dies right after its ``n``-th save (a mid-epoch one when
    saving every batch)."""

    def __init__(self, path, n, **kw):
        super().__init__(path, **kw)
        self.n = n

    def save(self, state):
        dt = super().save(state)
        if self.saves == self.n:
            raise Interrupted
        return dt
