"""The experiment vocabulary, below the runner, the studies and the report.

* :mod:`~smithing.experiment.study`: :class:`Study` (a study's declaration), :class:`Variant`,
  :class:`RunResult`, :class:`Figure`, :class:`Table`, and the registry ``STUDIES`` that study
  modules register into.
* :mod:`~smithing.experiment.results`: :class:`RunRecord` and :class:`StudyResults` (what the
  store gives back) and the summary tables.
* :mod:`~smithing.experiment.mlp`: the ``"mlp"`` run kind (:class:`MLPConfig`, ``train_one``,
  ``train_group``).
* :mod:`~smithing.experiment.store`: the SQLite results store (schema, migrations, leases).
* :mod:`~smithing.experiment.reproductions`: :class:`Reproduction` (a published number, the
  runs that reproduce it, the target) and the registry ``REPRODUCTIONS`` that study modules
  register into (:func:`register_reproduction`).

Nothing here imports the runner, the studies, the report or the CLI.
"""

from smithing.experiment import pretrained as _pretrained  # noqa: F401  (registers "dbn", "sda")
from smithing.experiment.reproductions import (
    REPRODUCTIONS,
    Paper,
    Reproduction,
    register_reproduction,
)
from smithing.experiment.results import (
    Figure,
    RunRecord,
    StudyResults,
    Table,
    error_table,
    mean_std_ci,
)
from smithing.experiment.study import (
    SCALES,
    STUDIES,
    RunResult,
    Study,
    Variant,
    register,
    rounded,
    unwrap_paragraphs,
)

__all__ = [
    "REPRODUCTIONS",
    "SCALES",
    "STUDIES",
    "Figure",
    "Paper",
    "Reproduction",
    "RunRecord",
    "RunResult",
    "Study",
    "StudyResults",
    "Table",
    "Variant",
    "error_table",
    "mean_std_ci",
    "register",
    "register_reproduction",
    "rounded",
    "unwrap_paragraphs",
]
