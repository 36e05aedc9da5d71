"""Our numbers for a reproduction: a :class:`Row` per variant (or per validation-chosen
variant), the :class:`Outcome` and its verdict (:func:`evaluate`), and :func:`stored`, which
reads them and their sessions from a results store."""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from smithing.experiment.reproductions.declaration import (
    _COMPARISONS,
    Reproduction,
    _canonical,
    format_time,
)
from smithing.experiment.results import RunRecord, StudyResults, mean_std_ci
from smithing.experiment.study import STUDIES

__all__ = [
    "Outcome",
    "Row",
    "evaluate",
    "select_per_seed",
    "stored",
]


@dataclass
class Row:
    """Our number for one variant (or the variant chosen on validation), over seeds."""

    label: str
    values: list[float] = field(default_factory=list)  # display units, one per seed
    seeds: list[int] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)  # per seed, for a selection row
    diverged: int = 0
    failed: int = 0
    pending: int = 0
    missing: bool = False  # the pattern matches no variant of the study

    @property
    def n(self) -> int:
        return mean_std_ci(self.values)[3]

    @property
    def mean(self) -> float:
        return mean_std_ci(self.values)[0]

    @property
    def std(self) -> float:
        return mean_std_ci(self.values)[1]

    @property
    def min(self) -> float:
        xs = [v for v in self.values if math.isfinite(v)]
        return min(xs) if xs else math.nan

    @property
    def max(self) -> float:
        xs = [v for v in self.values if math.isfinite(v)]
        return max(xs) if xs else math.nan

    def to_dict(self) -> dict:
        def clean(x):
            return None if x is None or not math.isfinite(x) else x

        return {
            "label": self.label,
            "mean": clean(self.mean),
            "std": clean(self.std),
            "n": self.n,
            "min": clean(self.min),
            "max": clean(self.max),
            "values": [clean(v) for v in self.values],
            "seeds": self.seeds,
            "chosen": self.chosen,
            "diverged": self.diverged,
            "failed": self.failed,
            "pending": self.pending,
            "missing": self.missing,
        }


@dataclass
class Outcome:
    """A reproduction's numbers and verdict (``met``: True, False, or None: not judged)."""

    reproduction: Reproduction
    rows: list[Row]
    met: bool | None
    verdict: str
    runs: int = 0
    seconds: float = 0.0  # the runs' own seconds, summed
    sessions: list[dict] = field(default_factory=list)  # the sessions that ran these runs

    @property
    def session_seconds(self) -> float:
        return sum(s.get("seconds") or 0.0 for s in self.sessions)

    @property
    def last_session(self) -> dict | None:
        return self.sessions[-1] if self.sessions else None

    def to_dict(self) -> dict:
        rep = self.reproduction
        return {
            "reproduction": rep.name,
            "paper": asdict(rep.paper),
            "result": rep.result,
            "study": rep.study,
            "scale": rep.scale,
            "metric": rep.metric,
            "unit": rep.shown_unit,
            "published": rep.published,
            "target": {"op": rep.target[0], "value": rep.target[1], "text": rep.target_text()},
            "rows": [r.to_dict() for r in self.rows],
            "met": self.met,
            "verdict": self.verdict,
            "runs": self.runs,
            "seconds": self.seconds,
            "session_seconds": self.session_seconds,
            "cpu_time": format_time(rep.cpu_time),
            "gpu_time": format_time(rep.gpu_time),
            "time_basis": rep.time_basis,
            "departures": list(rep.departures),
            "recipe_status": rep.recipe_status,
        }


def _value(rep: Reproduction, r: RunRecord) -> float:
    v = r.final.get(rep.metric, math.nan)
    try:
        return rep.factor * float(v)
    except (TypeError, ValueError):
        return math.nan


def _variant_row(rep: Reproduction, label: str, runs: list[RunRecord]) -> Row:
    row = Row(label)
    for r in sorted(runs, key=lambda r: r.seed):
        if r.status == "done":
            row.values.append(_value(rep, r))
            row.seeds.append(r.seed)
        elif r.status == "diverged":
            row.diverged += 1
        elif r.status == "failed":
            row.failed += 1
        else:
            row.pending += 1
    return row


def _selection_key(rep: Reproduction, r: RunRecord) -> tuple:
    sign = -1.0 if rep.select_higher else 1.0
    key = []
    for k in rep.select_on:
        try:
            v = float(r.final.get(k, math.nan))
        except (TypeError, ValueError):
            v = math.nan
        key.append(sign * v if math.isfinite(v) else math.inf)
    return tuple(key)


def select_per_seed(rep: Reproduction, runs: Sequence[RunRecord], variants: Sequence[str]) -> Row:
    """The "chosen on validation" row: for each seed whose runs of every variant in
    ``variants`` are complete, the done run with the best ``select_on`` metrics (lowest, or
    highest with ``select_higher``; diverged runs are never chosen) gives the seed's value."""
    row = Row(f"chosen on {rep.select_on[0]}")
    by_seed: dict[int, dict[str, RunRecord]] = {}
    for r in runs:
        by_seed.setdefault(r.seed, {})[r.variant] = r
    for seed in sorted(by_seed):
        got = by_seed[seed]
        if any(v not in got or got[v].status not in ("done", "diverged") for v in variants):
            row.pending += 1  # not every candidate of this seed is complete: no choice yet
            row.failed += sum(got[v].status == "failed" for v in variants if v in got)
            continue
        done = [got[v] for v in variants if got[v].status == "done"]
        if not done:
            row.diverged += 1
            continue
        best = min(done, key=lambda r: (_selection_key(rep, r), variants.index(r.variant)))
        row.values.append(_value(rep, best))
        row.seeds.append(seed)
        row.chosen.append(best.variant)
    return row


def _holds(rep: Reproduction, x: float) -> bool:
    op, value = rep.target
    if not math.isfinite(x):
        return False
    if op == "~":
        return abs(x - value[0]) <= value[1]
    return _COMPARISONS[op](x, value)


def _judge(rep: Reproduction, rows: list[Row]) -> tuple[bool | None, str]:
    if not any(r.n or r.diverged for r in rows):
        return None, "not run yet"
    op = rep.target[0]
    failing, unjudged = [], []
    if op == "increasing":
        for r in rows:
            if r.diverged:
                failing.append(f"{r.label}: {r.diverged} diverged")
            elif not r.n:
                unjudged.append(r.label)
        if not failing and not unjudged:
            means = [r.mean for r in rows]
            for a, b, ma, mb in zip(rows, rows[1:], means, means[1:]):
                if not ma < mb:
                    failing.append(
                        f"{a.label} {rep.format(ma)} not below {b.label} {rep.format(mb)}"
                    )
    else:
        for r in rows:
            if r.diverged:
                failing.append(f"{r.label}: {r.diverged} diverged")
            elif not r.n:
                unjudged.append(r.label)
            elif rep.every_run:
                bad = [s for s, v in zip(r.seeds, r.values) if not _holds(rep, v)]
                if bad:
                    failing.append(f"{r.label}: seed(s) {', '.join(map(str, bad))}")
            elif not _holds(rep, r.mean):
                failing.append(f"{r.label}: {rep.format(r.mean)}")
    if failing:
        return False, "not met (" + "; ".join(failing) + ")"
    if unjudged:
        return None, "incomplete (no runs yet: " + ", ".join(unjudged) + ")"
    return True, "met"


def evaluate(rep: Reproduction, results: StudyResults, seeds: int | None = None) -> Outcome:
    """Our numbers for ``rep`` from the runs of ``results`` (its study's; a run counts when
    its variant and configuration are the reproduction's, and its seed is below ``seeds``
    when given), and the verdict."""
    runs = rep.runs_of(results, seeds)
    found, missing = rep.patterns()
    expected = list(rep.expected_configs())
    if rep.select_on:
        rows = [select_per_seed(rep, runs, expected)] if expected else []
    else:
        rows = []
        order = rep.variants or tuple(expected)
        for pat in order:
            names = [v for v in expected if fnmatch.fnmatchcase(v, pat)]
            for v in names:
                rows.append(_variant_row(rep, v, [r for r in runs if r.variant == v]))
    rows += [Row(p, missing=True) for p in missing]
    met, verdict = _judge(rep, rows)
    if missing and met is not False and verdict != "not run yet":
        met = None  # a part of the target cannot be judged: the study lacks its variants
        verdict = (
            f"incomplete (not a variant of study {rep.study!r} at scale {rep.scale!r}: "
            + ", ".join(missing)
            + ")"
        )
    secs = [r.seconds for r in runs if isinstance(r.seconds, (int, float))]
    seconds = sum(x for x in secs if math.isfinite(x))
    return Outcome(rep, rows, met, verdict, runs=len(runs), seconds=seconds)


def stored(store, rep: Reproduction, seeds: int | None = None) -> Outcome:
    """:func:`evaluate` on the runs of ``store`` (a :class:`~smithing.experiment.store.Store`)
    at the reproduction's scale, with the sessions that ran (some of) them, oldest first
    (``command``, ``started``, ``seconds``, ``environment``)."""
    if rep.study not in STUDIES:
        return Outcome(rep, [], None, f"study {rep.study!r} is not registered")
    results = store.results(rep.study, rep.scale)
    out = evaluate(rep, results, seeds)
    if out.runs:
        out.sessions = _sessions(store, rep, results, seeds)
    return out


def _sessions(store, rep: Reproduction, results: StudyResults, seeds: int | None) -> list[dict]:
    """The store's sessions of the study whose runs include one of ``rep``'s runs."""
    # run ids are not part of RunRecord: read them beside (variant, seed, config), as
    # Store.results does, and keep those of the reproduction's runs
    expected = {v: _canonical(c) for v, c in rep.expected_configs().items()}
    ids = set()
    rows = store.conn.execute(
        "SELECT id, variant, seed, config FROM runs WHERE study=? AND scale=?",
        (rep.study, rep.scale),
    ).fetchall()
    for rid, variant, seed, config in rows:
        cfg = expected.get(variant)
        if cfg is None or (seeds is not None and seed >= seeds):
            continue
        if _canonical({**json.loads(config), "seed": 0}) == cfg:
            ids.add(rid)
    out = []
    for command, started, finished, secs, env, run_ids in store.conn.execute(
        "SELECT command, started, finished, seconds, environment, run_ids FROM sessions "
        "WHERE study=? AND scale=? ORDER BY id",
        (rep.study, rep.scale),
    ).fetchall():
        if ids & set(json.loads(run_ids or "[]")):
            out.append(
                {
                    "command": command,
                    "started": started,
                    "finished": finished,
                    "seconds": secs,
                    "environment": json.loads(env),
                }
            )
    return out
