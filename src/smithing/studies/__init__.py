"""The studies: each module of this package declares one :class:`~smithing.studies.base.Study`.

``STUDIES`` is the registry; importing this package imports every module beside ``base`` (in
alphabetical order, except that the registry lists studies in ``ORDER`` first), so declaring a
new study takes one file.
"""

import importlib
import pkgutil

from smithing.studies.base import (
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
    if _info.name != "base" and not _info.name.startswith("_"):
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
