"""Reproductions: a published number, the runs of a study that reproduce it, and a target.

A :class:`Reproduction` names one result of a paper (e.g. the 1.81 % MNIST test error of
Larochelle & Bengio's discriminatively trained classification RBM), the study, scale, variants
(shell patterns), overrides and seeds whose runs reproduce it, the key of the runs' ``final``
metrics that is compared, the target our number must meet, the expected wall time, every known
departure from the paper and how sure we are of the recipe. A study module declares its
reproductions beside its ``STUDY = register(...)``::

    register_reproduction(Reproduction(
        name="classrbm-discriminative",
        paper=Paper("Larochelle & Bengio", "Classification using discriminative restricted "
                    "Boltzmann machines", "ICML", 2008),
        result="classification RBM, discriminative training, MNIST test error",
        published=1.81, target=("<=", 2.0),
        study=STUDY.name, variants=("discriminative",), metric="test_error",
    ))

``smithing reproduce NAME`` runs them (through the runner) and :func:`evaluate` turns the runs
into our numbers: one :class:`Row` per variant (mean +- sample std over seeds, min, max), or,
for a reproduction with ``select_on`` (a hyperparameter "chosen on validation"), one row whose
value for each seed is the test metric of the variant with the best validation metric of that
seed. :func:`stored` reads a reproduction's runs, and the sessions that ran them, from a
results store (the report's Reproductions page).

Targets (values in the reproduction's display units: percent for ``display="percent"``):

* ``("<=", 2.0)`` (and ``<``, ``>``, ``>=``): every row's mean; with ``every_run=True`` every
  run's value (e.g. "test MSE < 0.01 in every seed");
* ``("~", (0.1667, 0.01))``: within 0.01 of 0.1667 (mean, or every run);
* ``("increasing", None)``: the rows' means increase in the order of ``variants`` (e.g. the
  test log-probabilities of CD-1 < CD-3 < CD-25).

A row with a diverged run misses its target. Nothing here imports the runner, the studies, the
report or the CLI: the reproductions are registered by the study modules that declare them.
"""

from __future__ import annotations

from smithing.experiment.reproductions.declaration import (
    DISPLAYS,
    REPRODUCTIONS,
    TARGET_OPS,
    Paper,
    Reproduction,
    format_time,
    register_reproduction,
)
from smithing.experiment.reproductions.outcome import (
    Outcome,
    Row,
    evaluate,
    select_per_seed,
    stored,
)

__all__ = [
    "DISPLAYS",
    "REPRODUCTIONS",
    "TARGET_OPS",
    "Outcome",
    "Paper",
    "Reproduction",
    "Row",
    "evaluate",
    "format_time",
    "register_reproduction",
    "select_per_seed",
    "stored",
]
