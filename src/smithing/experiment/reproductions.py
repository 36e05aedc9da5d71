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

import fnmatch
import json
import math
import operator
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from smithing._registry import Registry, check
from smithing.experiment.results import RunRecord, StudyResults, mean_std_ci
from smithing.experiment.study import SCALES, STUDIES

#: how a metric is shown: "percent" (a rate, shown x 100), "nats", "plain"
DISPLAYS = {"percent": (100.0, "%"), "nats": (1.0, "nats"), "plain": (1.0, "")}
_COMPARISONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
TARGET_OPS = (*_COMPARISONS, "~", "increasing")


@dataclass(frozen=True)
class Paper:
    """Where a published number comes from."""

    authors: str  # "Larochelle & Bengio"
    title: str
    venue: str  # "ICML", "Science 313:504-507", "deeplearning.net tutorial"
    year: int

    def short(self) -> str:
        """``Larochelle & Bengio 2008``."""
        return f"{self.authors} {self.year}"

    def cite(self) -> str:
        """``Larochelle & Bengio, "Classification ...", ICML, 2008``."""
        return f'{self.authors}, "{self.title}", {self.venue}, {self.year}'


@dataclass(frozen=True)
class Reproduction:
    """One published result, the runs that reproduce it and the target they must meet.

    Args:
        name: the registry name (``smithing reproduce NAME``).
        paper: the source of the published number.
        result: what is reproduced, e.g. "classification RBM, discriminative training, MNIST
            test error".
        published: the published value in display units (1.81 for 1.81 %), or a sentence
            where the paper gives none we could confirm ("IRNN solves it").
        target: ``(op, value)``, see the module docstring.
        study, scale, variants, overrides, seeds: the runs (:meth:`Study.expand`); ``variants``
            are shell patterns (empty: every variant of the scale); ``seeds`` the default
            number of seeds.
        metric: the key of the runs' ``final`` metrics that is compared (e.g. "test_error").
        display: "percent" (the metric is a fraction, shown x 100), "nats" or "plain".
        unit: the unit shown (default: "%" for percent, "nats" for nats, none for plain).
        select_on: for a value "chosen on validation": per seed, the run of the matching
            variants with the lowest ``final[select_on[0]]`` (ties: the next keys) is the
            seed's result; ``select_higher`` picks the highest instead.
        every_run: the target must hold for every run, not only for the mean.
        cpu_time, gpu_time: expected wall time per seed (a string, or seconds) on the 2-core
            CPU of the project and on a GPU; say "estimate" where it is not measured.
        time_basis: what the expected times rest on (number of updates, time per update).
        departures: every known departure of the runs from the paper's recipe.
        recipe_status: how sure the recipe is, e.g. "hyperparameters recalled, unverified".
    """

    name: str
    paper: Paper
    result: str
    published: float | str
    target: tuple
    study: str
    metric: str
    display: str = "percent"
    unit: str | None = None
    scale: str = "paper"
    variants: tuple[str, ...] = ()
    overrides: dict = field(default_factory=dict, hash=False)
    seeds: int = 3
    select_on: tuple[str, ...] = ()
    select_higher: bool = False
    every_run: bool = False
    cpu_time: str | float = ""
    gpu_time: str | float = ""
    time_basis: str = ""
    departures: tuple[str, ...] = ()
    recipe_status: str = ""

    def __post_init__(self) -> None:
        for name in ("variants", "select_on", "departures"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        check(bool(self.name) and isinstance(self.name, str), "name", self.name, "a name")
        check(self.display in DISPLAYS, "display", self.display, f"one of {tuple(DISPLAYS)}")
        check(self.scale in SCALES, "scale", self.scale, f"one of {SCALES}")
        check(isinstance(self.seeds, int) and self.seeds >= 1, "seeds", self.seeds, "an int >= 1")
        check(bool(self.metric), "metric", self.metric, "a key of the runs' final metrics")
        check(
            isinstance(self.target, (tuple, list)) and len(self.target) == 2,
            "target",
            self.target,
            "(op, value)",
        )
        op, value = self.target
        check(op in TARGET_OPS, "target op", op, f"one of {TARGET_OPS}")
        if op in _COMPARISONS:
            check(isinstance(value, (int, float)), "target value", value, "a number")
        elif op == "~":
            check(
                isinstance(value, (tuple, list))
                and len(value) == 2
                and all(isinstance(x, (int, float)) for x in value)
                and value[1] >= 0,
                "target value",
                value,
                "(center, tolerance >= 0)",
            )
        else:
            check(len(self.variants) >= 2, "variants", self.variants, "two or more, in order")
            check(not self.select_on, "select_on", self.select_on, "() for an ordering")

    # ------------------------------------------------------------------ display

    @property
    def factor(self) -> float:
        """Display units per unit of the metric (100 for percent)."""
        return DISPLAYS[self.display][0]

    @property
    def shown_unit(self) -> str:
        return self.unit if self.unit is not None else DISPLAYS[self.display][1]

    def number(self, value: float | None) -> str:
        """A value in display units, without its unit: two decimals for percent and nats,
        four significant digits for plain values (``1.81``, ``-86.34``, ``0.0012``)."""
        if value is None or not math.isfinite(value):
            return "n/a"
        return f"{value:.4g}" if self.display == "plain" else f"{value:.2f}"

    def format(self, value: float | None) -> str:
        """A value in display units with its unit (``1.81 %``, ``-86.34 nats``)."""
        unit = self.shown_unit
        text = self.number(value)
        return text + (f" {unit}" if unit and text != "n/a" else "")

    def published_text(self) -> str:
        if isinstance(self.published, (int, float)):
            return self.format(float(self.published))
        return str(self.published)

    def target_text(self) -> str:
        """``<= 2.0 %``, ``within 0.01 of 0.167``, ``cd-1 < cd-3 < cd-25``."""
        op, value = self.target
        unit = f" {self.shown_unit}" if self.shown_unit else ""
        every = " in every run" if self.every_run else ""
        if op in _COMPARISONS:
            return f"{op} {value:g}{unit}{every}"
        if op == "~":
            return f"within {value[1]:g} of {value[0]:g}{unit}{every}"
        return " < ".join(self.variants)

    # ------------------------------------------------------------------ runs

    def patterns(self) -> tuple[list[str], list[str]]:
        """The variant patterns that match a variant of the study at the scale, and those
        that match none (listed as missing: e.g. a length the study does not run yet)."""
        names = [v.name for v in STUDIES.get(self.study).variants(self.scale)]
        if not self.variants:
            return [], []
        found = [p for p in self.variants if any(fnmatch.fnmatchcase(n, p) for n in names)]
        return found, [p for p in self.variants if p not in found]

    def expected_configs(self) -> dict[str, dict]:
        """``{variant: configuration of its seed-0 run}`` of the runs this reproduction asks
        for (overrides applied); an empty dict when no pattern matches."""
        found, missing = self.patterns()
        if self.variants and not found:
            return {}
        study = STUDIES.get(self.study)
        runs = study.expand(
            self.scale, seeds=1, overrides=dict(self.overrides) or None, only=found or None
        )
        return {v.name: v.config for v, _ in runs}

    def runs_of(self, results: StudyResults, seeds: int | None = None) -> list[RunRecord]:
        """The runs of ``results`` that this reproduction asked for: a matching variant, the
        same configuration (seed apart), and a seed below ``seeds`` when given."""
        expected = {v: _canonical(c) for v, c in self.expected_configs().items()}
        out = []
        for r in results.runs:
            cfg = expected.get(r.variant)
            if cfg is None or (seeds is not None and r.seed >= seeds):
                continue
            if _canonical({**r.config, "seed": 0}) == cfg:
                out.append(r)
        return out


def _canonical(config: dict) -> str:
    return json.dumps(config, sort_keys=True, default=str)


REPRODUCTIONS: Registry[Reproduction] = Registry("reproduction")


def register_reproduction(reproduction: Reproduction) -> Reproduction:
    """Register ``reproduction`` in :data:`REPRODUCTIONS` (called by the declaring module)."""
    REPRODUCTIONS.register(reproduction.name, reproduction, description=reproduction.result)
    return reproduction


# ---------------------------------------------------------------------- our numbers


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


def format_time(t: str | float) -> str:
    """An expected wall time as given (a string), or seconds as ``45 s`` / ``12 min`` /
    ``1.5 h``."""
    if isinstance(t, str):
        return t
    if t < 10:
        return f"{t:.1f} s"
    if t < 120:
        return f"{t:.0f} s"
    if t < 7200:
        return f"{t / 60:.0f} min"
    return f"{t / 3600:.1f} h"


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
