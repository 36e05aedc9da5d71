"""The hybrid study's table and the alpha chosen on validation."""

from __future__ import annotations

import math

from smithing.experiment import (
    StudyResults,
    Table,
    mean_std_ci,
)
from smithing.studies.hybrid.configs import (
    PAPER,
)

__all__ = [
    "chosen_alpha",
    "table",
]


def _mean(results: StudyResults, variant: str, key: str) -> float:
    return mean_std_ci(results.finals(variant, key))[0]


def chosen_alpha(results: StudyResults) -> str | None:
    """The hybrid variant with the lowest mean validation error (ties: validation loss)."""
    hybrids = [v for v in results.variants() if v.startswith("hybrid a=")]
    scored = [
        ((_mean(results, v, "valid_error"), _mean(results, v, "valid_loss")), v)
        for v in hybrids
        if math.isfinite(_mean(results, v, "valid_error"))
    ]
    return min(scored)[1] if scored else None


def _pct(results: StudyResults, v: str, key: str = "test_error") -> tuple[str, str, int]:
    mean, std, half, n = mean_std_ci(results.finals(v, key))
    if not n:
        return "n/a", "n/a", 0
    ci = f"[{100 * (mean - half):.2f}, {100 * (mean + half):.2f}]" if n > 1 else "n/a"
    return f"{100 * mean:.2f} ± {100 * std:.2f}", ci, n


def _paper(variant: str, best: str | None) -> float | None:
    """The paper's number for a variant (the hybrid's only beside the selected alpha)."""
    if variant.startswith("hybrid a="):
        return PAPER["hybrid"] if variant == best else None
    return PAPER.get(variant)


def table(results: StudyResults) -> Table:
    best = chosen_alpha(results)
    rows = []
    for v in results.variants():
        test, ci, n = _pct(results, v)
        valid = _mean(results, v, "valid_error")
        paper = _paper(v, best)
        note = "selected on validation" if v == best else ""
        rows.append([
            v, test, ci, f"{100 * valid:.2f}" if math.isfinite(valid) else "n/a", n,
            "" if paper is None else f"{paper:.2f} (MNIST, unverified recollection)", note,
        ])  # fmt: skip
    return Table(
        ["variant", "test error (%) mean ± std", "95 % interval", "valid error (%)", "runs",
         "Larochelle & Bengio 2008 (%)", "note"],
        rows,
        "Test error of the epoch with the lowest validation error, mean ± sample std over "
        "seeds. The hybrid's alpha is the grid value with the lowest mean validation error. "
        "sup / semi n=...: n labels, supervised hybrid vs semi-supervised hybrid (+ beta log "
        "p(x) on the rest of the training set).",
    )  # fmt: skip
