"""The dbn study's table."""

from __future__ import annotations

from smithing.experiment import (
    error_table,
)
from smithing.studies.dbn.configs import (
    PAPER,
)

__all__ = [
    "table",
]


def table(results):
    t = error_table(
        results,
        "test_error",
        "Test error (%) of the early-stopped networks: mean ± sample std over seeds; 95 % "
        "Student-t interval of the mean. Published numbers are for MNIST.",
    )
    mnist = any(r.config.get("dataset") == "mnist" for r in results.runs)
    for name, err in PAPER:  # the published numbers, always MNIST
        t.rows.append(
            [
                f"published, MNIST{'' if mnist else ' (not this dataset)'}: {name}",
                err,
                "—",
                "—",
                "—",
            ]
        )
    return t
