"""Optional dependencies: import one, or say in one line which extra installs it.

The core needs torch, numpy and safetensors only; the rest comes with an extra
(``pip install 'smithing[report]'``, ...). Every place that imports an optional dependency
goes through :func:`require`, so a missing one always reads the same::

    smithing report needs matplotlib: pip install 'smithing[report]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: import name -> (the name pip knows it by, the extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "matplotlib": ("matplotlib", "report"),
    "PIL": ("pillow", "report"),
    "sklearn": ("scikit-learn", "sklearn"),
    "ray": ("ray", "ray"),
    "tensorboard": ("tensorboard", "tensorboard"),
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def missing_message(module: str, feature: str) -> str:
    """``"FEATURE needs PACKAGE: pip install 'smithing[EXTRA]'"`` for the import name ``module``."""
    top = module.partition(".")[0]
    package, extra = EXTRAS.get(top, (top, "all"))
    return f"{feature} needs {package}: pip install 'smithing[{extra}]'"


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` (e.g. ``"matplotlib.pyplot"``) for ``feature`` (e.g. ``"the report"``).

    Raises :class:`MissingExtraError` (an ``ImportError``) with the one-line message of
    :func:`missing_message` when the module's top-level package is not installed; an import
    error from inside an installed package (a broken install) propagates unchanged.
    """
    top = module.partition(".")[0]
    try:
        importlib.import_module(top)  # the package itself first: is the extra there at all?
        return importlib.import_module(module)
    except ImportError as e:
        if e.name is not None and e.name.partition(".")[0] != top:
            raise  # the package is there but one of *its* imports failed
        raise MissingExtraError(missing_message(module, feature)) from None


__all__ = ["EXTRAS", "MissingExtraError", "missing_message", "require"]
