"""``smithing doctor``: the library's gradient diagnostics for any PyTorch model.

:func:`doctor` ``(model, batch, out=...)`` measures a model at initialization on a batch
(activation statistics and saturation, gradient norms and their first / last ratio, dead
units, exploding or non-finite gradients, the initializer the weights match), runs a short
learning-rate range test on a copy, and writes one self-contained HTML page with findings and
advice; :func:`diagnose` returns the same as data (a :class:`Diagnosis` of :class:`Finding` s)
without writing anything.

``smithing.doctor`` is both this package and the function: calling the package,
``smithing.doctor(model, batch)``, calls :func:`doctor` (once the package is imported, Python
sets the attribute ``smithing.doctor`` to it, so the package itself is made callable).
"""

from __future__ import annotations

import sys
import types

from smithing.doctor.diagnose import (
    LAYERS,
    RECOMMENDED,
    Diagnosis,
    Finding,
    LayerReport,
    diagnose,
)
from smithing.doctor.initmatch import STD_RULES, InitMatch, match_initializer
from smithing.doctor.lr_range import LRRange, lr_range_test
from smithing.doctor.page import write_page


def doctor(model, batch, *, out="smithing-doctor", title=None, **options) -> Diagnosis:
    """Diagnose ``model`` on ``batch = (x, y)`` and write the page ``out`` (a folder, which gets
    ``doctor.html``, or an ``.html`` path); returns the :class:`Diagnosis`, whose ``page``
    attribute is the written file's path, titled ``title``. ``options`` go to
    :func:`diagnose`; ``out=None`` writes nothing."""
    diag = diagnose(model, batch, **options)
    diag.page = write_page(diag, out, title) if out is not None else None
    return diag


__all__ = [
    "LAYERS",
    "RECOMMENDED",
    "STD_RULES",
    "Diagnosis",
    "Finding",
    "InitMatch",
    "LRRange",
    "LayerReport",
    "diagnose",
    "doctor",
    "lr_range_test",
    "match_initializer",
    "write_page",
]


class _CallableModule(types.ModuleType):
    def __call__(self, model, batch, **options) -> Diagnosis:
        return doctor(model, batch, **options)


sys.modules[__name__].__class__ = _CallableModule
