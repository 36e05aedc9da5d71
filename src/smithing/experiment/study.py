"""What a study is: named variants x seeds, a scale, and the figures and table it makes.

A study module declares one :class:`Study` and registers it::

    STUDY = register(Study(
        name="activations",
        description="sigmoid vs tanh vs relu vs softsign on the same MLP",
        variants=lambda scale: [Variant("relu", {"activation": "relu", ...}), ...],
        seeds={"quick": 5, "paper": 5},
        datasets={"quick": "digits", "paper": "mnist"},
        figures=make_figures,   # (StudyResults, out_dir) -> [Figure]
        table=make_table,       # (StudyResults) -> Table
    ))

Variants of kind ``"mlp"`` are :class:`~smithing.experiment.mlp.MLPConfig` dictionaries, trained
by the runner (batched into ensembles where they share a shape). A study with other kinds of
runs gives ``run=fn(config, seed, device, data_dir) -> RunResult`` and they run one at a time.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field

from smithing._registry import Registry
from smithing.experiment.results import Figure, StudyResults, Table

__all__ = [
    "SCALES",
    "Variant",
    "RunResult",
    "Study",
    "STUDIES",
    "register",
    "rounded",
    "unwrap_paragraphs",
]

SCALES = ("quick", "paper")


@dataclass(frozen=True)
class Variant:
    """One named configuration of a study (its seeds are added by the runner)."""

    name: str
    config: dict
    kind: str = "mlp"  # "mlp": an MLPConfig dict; else the study's own ``run`` function


@dataclass
class RunResult:
    """What one run leaves in the store."""

    status: str  # done | diverged | failed
    final: dict = field(default_factory=dict)
    epochs: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # anything JSON-able a study's figures need
    message: str = ""
    seconds: float = 0.0
    #: the trained model (an ``nn.Module`` or a stack), or a dict ``name -> model`` for several
    #: (e.g. ``{"stack": ..., "mlp": ...}``), saved by ``--save-models``; never stored in the
    #: database
    model: object | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    variants: Callable[[str], list[Variant]]  # scale -> variants
    figures: Callable[[StudyResults, str], list[Figure]] | None = None
    table: Callable[[StudyResults], Table] | None = None
    seeds: dict = field(default_factory=lambda: {"quick": 3, "paper": 5})
    datasets: dict = field(default_factory=lambda: {"quick": "digits", "paper": "mnist"})
    run: Callable[..., RunResult] | None = None  # for non-"mlp" variants
    #: ``validate(config)`` raises ``ValueError`` on a bad configuration; called once per
    #: distinct configuration before any training (see :mod:`smithing.experiment.validate`)
    validate: Callable[[dict], None] | None = None
    #: the module that declares the study (filled in by :func:`register`); worker processes
    #: import it to find the study
    module: str = ""
    references: str = ""  # markdown: the paper numbers shown beside ours
    in_tour: bool = True
    # for "mlp" runs: extract(model, history, data, config) -> dict of JSON-able extras
    extract: Callable | None = None
    #: the final metric ``smithing run`` summarizes per variant (a key of RunResult.final),
    #: and whether it is a rate shown in percent
    metric: str = "test_error"
    metric_percent: bool = True
    #: configuration keys ``--set`` may override besides those the variants use (optional
    #: keys a non-"mlp" ``run`` reads with a default)
    extra_keys: tuple[str, ...] = ()
    #: whether the study's own run kinds take an MLPConfig plus a few keys of their own (then
    #: every MLPConfig field may be overridden, as for "mlp" runs)
    mlp_keys: bool = False

    def config_keys(self) -> set[str]:
        """The keys ``--set`` may override: those of the variants at every scale, ``dataset``,
        ``seed``, :attr:`extra_keys`, and every :class:`~smithing.experiment.mlp.MLPConfig` field
        when the study has "mlp" runs or :attr:`mlp_keys`."""
        from dataclasses import fields

        from smithing.experiment.mlp import MLPConfig

        keys = {"dataset", "seed", *self.extra_keys}
        kinds = set()
        for scale in SCALES:
            for v in self.variants(scale):
                keys.update(v.config)
                kinds.add(v.kind)
        if "mlp" in kinds or self.mlp_keys:
            keys.update(f.name for f in fields(MLPConfig))
        return keys

    def expand(
        self,
        scale: str,
        dataset: str | None = None,
        seeds: int | None = None,
        overrides: dict | None = None,
        only: list[str] | None = None,
    ) -> list[tuple[Variant, int]]:
        """The study's runs: (variant with the dataset filled in, seed) pairs.

        ``only``: keep the variants whose name matches one of these shell-style patterns
        (``fnmatch``: ``"linear-*"``, ``"tanh"``); a pattern that matches no variant is an
        error that lists the study's variants.
        """
        if scale not in SCALES:
            raise ValueError(f"scale={scale!r} is invalid: expected one of {SCALES}")
        n_seeds = seeds if seeds is not None else self.seeds[scale]
        if n_seeds < 1:
            raise ValueError(f"seeds={n_seeds} is invalid: expected a positive int")
        if overrides:
            valid = self.config_keys()
            unknown = sorted(set(overrides) - valid)
            if unknown:
                raise ValueError(
                    f"configuration key(s) {unknown} are not used by study {self.name!r}: "
                    f"expected keys among {sorted(valid)}"
                )
        ds = dataset or self.datasets[scale]
        chosen = self.variants(scale)
        if only:
            names = [v.name for v in chosen]
            for pat in only:
                if not any(fnmatch.fnmatchcase(n, pat) for n in names):
                    raise ValueError(
                        f"variant {pat!r} matches no variant of study {self.name!r} at scale "
                        f"{scale!r}: expected one of {', '.join(names)}"
                    )
            chosen = [v for v in chosen if any(fnmatch.fnmatchcase(v.name, p) for p in only)]
        out = []
        for v in chosen:
            cfg = dict(v.config)
            cfg.setdefault("dataset", ds)
            if dataset is not None:
                cfg["dataset"] = dataset
            cfg.update(overrides or {})
            for s in range(n_seeds):
                out.append((Variant(v.name, {**cfg, "seed": s}, v.kind), s))
        return out


STUDIES: Registry[Study] = Registry("study")


def register(study: Study) -> Study:
    """Register ``study`` in :data:`STUDIES` (called by the module that declares it)."""
    import dataclasses
    import inspect

    if not study.module:
        caller = inspect.currentframe().f_back
        study = dataclasses.replace(study, module=caller.f_globals.get("__name__", ""))
    STUDIES.register(study.name, study, description=study.description)
    return study


def rounded(t, digits: int = 4) -> list:
    """A tensor as nested lists of floats rounded to ``digits`` (compact JSON for a run's
    ``extra``)."""
    import numpy as np

    return np.round(t.detach().cpu().double().numpy(), digits).tolist()


def unwrap_paragraphs(text: str) -> str:
    """Join the hard-wrapped lines of each paragraph of ``text`` into one line.

    The report's markdown renders each line as a paragraph, so a study's ``references`` written
    as a wrapped triple-quoted string are unwrapped first: every non-blank line is appended
    (after one space, stripped) to the previous one unless either is a table row (starts with
    ``|``) or the previous line is blank. Blank lines and table rows are kept as they are
    (stripped); leading and trailing blank lines are dropped.
    """
    out: list[str] = []
    for line in text.strip().splitlines():
        s = line.strip()
        if s and not s.startswith("|") and out and out[-1] and not out[-1].startswith("|"):
            out[-1] += " " + s
        else:
            out.append(s)
    return "\n".join(out)
