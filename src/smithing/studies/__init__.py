"""The studies: each module declares one :class:`~smithing.studies.base.Study`.

``STUDIES`` is the registry; importing this package registers every built-in study.
"""

import importlib

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

_BUILTIN = ("activations",)

for _name in _BUILTIN:
    importlib.import_module(f"smithing.studies.{_name}")

__all__ = [
    "STUDIES",
    "Figure",
    "RunResult",
    "Study",
    "StudyResults",
    "Table",
    "Variant",
    "register",
]
