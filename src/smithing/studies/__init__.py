"""The studies: each module of this package declares one :class:`~smithing.experiment.Study`.

Importing this package imports every study module (alphabetical order) and so registers each
study in :data:`smithing.experiment.STUDIES`; declaring a new study takes one file. A study
imports the library core, :mod:`smithing.experiment` and :mod:`smithing.plots`, never another
study. :func:`ordered` lists the studies in the tour's order.
"""

import importlib
import pkgutil

from smithing.experiment import (
    STUDIES,
    Figure,
    RunResult,
    Study,
    StudyResults,
    Table,
    Variant,
    register,
)

#: the tour's order: the lectures' order where known, the rest after
ORDER = (
    "activations",
    "vanishing-gradients",
    "initialization",
    "optimizer-race",
    "early-stopping",
    "regularization",
    "pruning",
    "rbm",
    "dbn",
)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")


def ordered() -> list[Study]:
    """Registered studies in the tour's order."""
    entries = {e.name: e.obj for e in STUDIES.entries()}
    first = [entries[n] for n in ORDER if n in entries]
    return first + [s for n, s in entries.items() if n not in ORDER]


__all__ = [
    "STUDIES",
    "Figure",
    "RunResult",
    "Study",
    "StudyResults",
    "Table",
    "Variant",
    "ordered",
    "register",
]
