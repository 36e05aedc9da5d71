"""Results read from the store: one :class:`RunRecord` per run, grouped as :class:`StudyResults`;
what a study makes of them (:class:`Figure`, :class:`Table`), and the summaries its tables use
(:func:`mean_std_ci`, :func:`error_table`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Figure", "Table", "RunRecord", "StudyResults", "mean_std_ci", "error_table"]


@dataclass(frozen=True)
class Figure:
    path: str  # file name relative to the study's report folder
    caption: str


@dataclass
class Table:
    columns: list[str]
    rows: list[list]
    caption: str = ""

    def to_markdown(self) -> str:
        head = "| " + " | ".join(self.columns) + " |"
        sep = "|" + "|".join("---" for _ in self.columns) + "|"
        body = ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in self.rows]
        return "\n".join([head, sep, *body])


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@dataclass
class RunRecord:
    variant: str
    seed: int
    config: dict
    status: str
    final: dict
    epochs: list[dict]
    extra: dict
    seconds: float
    message: str = ""


@dataclass
class StudyResults:
    """Every stored run of one study, grouped by variant (in the study's variant order)."""

    study: str
    runs: list[RunRecord]
    meta: dict = field(default_factory=dict)

    def variants(self) -> list[str]:
        seen: list[str] = []
        for r in self.runs:
            if r.variant not in seen:
                seen.append(r.variant)
        return seen

    def of(self, variant: str) -> list[RunRecord]:
        return [r for r in self.runs if r.variant == variant]

    def finals(self, variant: str, key: str, only_done: bool = True) -> list[float]:
        return [
            float(r.final.get(key, math.nan))
            for r in self.of(variant)
            if not only_done or r.status == "done"
        ]

    def first_done(self, variant: str, extra: str) -> RunRecord | None:
        """The done run of ``variant`` with the lowest seed whose ``extra[extra]`` is set (the run
        a figure draws filters or samples from), or None."""
        runs = [r for r in self.of(variant) if r.status == "done" and r.extra.get(extra)]
        return min(runs, key=lambda r: r.seed) if runs else None

    def curves(self, variant: str, key: str) -> list[list[float]]:
        return [
            [float(e.get(key, math.nan)) for e in r.epochs] for r in self.of(variant) if r.epochs
        ]


def mean_std_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float, int]:
    """Mean, sample std, half-width of the ``level`` Student-t interval, and n (finite only)."""
    xs = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = sum(xs) / n
    if n == 1:
        return mean, 0.0, math.nan, 1
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    from scipy.stats import t

    half = float(t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return mean, std, half, n


def error_table(
    results: StudyResults, key: str = "test_error", caption: str = "", percent: bool = True
) -> Table:
    """The standard final-error table: variant, mean +- std, 95 % interval, runs, diverged."""
    rows = []
    k = 100.0 if percent else 1.0
    unit = " (%)" if percent else ""
    for v in results.variants():
        mean, std, half, n = mean_std_ci(results.finals(v, key))
        runs = results.of(v)
        diverged = sum(r.status == "diverged" for r in runs)
        lo, hi = mean - half, mean + half
        rows.append(
            [
                v,
                f"{k * mean:.2f} ± {k * std:.2f}" if n else "n/a",
                f"[{k * lo:.2f}, {k * hi:.2f}]" if n > 1 else "n/a",
                n,
                diverged,
            ]
        )
    return Table(
        ["variant", f"{key}{unit} mean ± std", "95 % interval", "runs", "diverged"], rows, caption
    )
