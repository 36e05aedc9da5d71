"""What a reproduction declares: :class:`Paper`, :class:`Reproduction` (study, variants, metric,
target, departures, expected time), the registry :data:`REPRODUCTIONS` and
:func:`register_reproduction`."""

from __future__ import annotations

import fnmatch
import json
import math
import operator
from dataclasses import dataclass, field

from smithing._registry import Registry, check
from smithing.experiment.results import RunRecord, StudyResults
from smithing.experiment.study import SCALES, STUDIES

__all__ = [
    "DISPLAYS",
    "Paper",
    "REPRODUCTIONS",
    "Reproduction",
    "TARGET_OPS",
    "format_time",
    "register_reproduction",
]

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
