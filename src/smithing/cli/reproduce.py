"""``smithing reproduce [NAME]``: list the reproductions of published results, or run one and
print our number beside the paper's."""

from __future__ import annotations

import json
from pathlib import Path

from smithing.cli._common import console, positive_int, study_args

NAME = "reproduce"
HELP = "list the reproductions of published results, or run one (resumably) and compare"


def add_arguments(p) -> None:
    p.add_argument("name", nargs="?", default=None, help="a reproduction (none: list them)")
    study_args(p)
    p.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        help="seeds per variant (default: the reproduction's)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    import smithing.studies  # noqa: F401  (registers the studies and their reproductions)
    from smithing.experiment import REPRODUCTIONS

    if args.name is None:
        return _list(REPRODUCTIONS, args)
    rep = REPRODUCTIONS.get(args.name)  # unknown: the registry's one-line error, exit 2
    return _reproduce(rep, args)


def _list(registry, args) -> int:
    from smithing.experiment.reproductions import format_time

    reps = [e.obj for e in registry.entries()]
    if args.json:
        print(
            json.dumps(
                {
                    "reproductions": [
                        {
                            "name": r.name,
                            "paper": r.paper.cite(),
                            "result": r.result,
                            "study": r.study,
                            "published": r.published,
                            "unit": r.shown_unit,
                            "target": r.target_text(),
                            "seeds": r.seeds,
                            "cpu_time": format_time(r.cpu_time),
                            "gpu_time": format_time(r.gpu_time),
                            "time_basis": r.time_basis,
                        }
                        for r in reps
                    ]
                }
            )
        )
        return 0
    from rich.markup import escape

    con = console()
    for r in reps:
        con.print(f"[bold]{escape(r.name)}[/]  {escape(r.paper.short())}")
        con.print(f"  {escape(r.result)}")
        con.print(
            f"  published {escape(r.published_text())}; target {escape(r.target_text())}; "
            f"{r.seeds} seed{'s' if r.seeds > 1 else ''}"
        )
        con.print(
            f"  expected per seed: CPU {escape(format_time(r.cpu_time))}, "
            f"GPU {escape(format_time(r.gpu_time))}"
        )
    con.print("run one: smithing reproduce NAME [--seeds N] [--device D] [--out DIR]")
    return 0


def _command(rep, args, seeds: int) -> str:
    parts = ["smithing", "reproduce", rep.name, "--seeds", str(seeds)]
    if args.device != "cpu":
        parts += ["--device", args.device]
    if args.threads:
        parts += ["--threads", str(args.threads)]
    if args.precision != "fp32":
        parts += ["--precision", args.precision]
    if args.compile:
        parts += ["--compile"]
    return " ".join(parts)


def _reproduce(rep, args) -> int:
    from smithing.cli._common import runner_kwargs
    from smithing.experiment.reproductions import stored
    from smithing.experiment.store import Store
    from smithing.report import write_report
    from smithing.runner import run_study

    seeds = args.seeds or rep.seeds
    found, missing = rep.patterns()
    if rep.variants and not found:
        from smithing.cli._common import CLIError

        raise CLIError(
            f"reproduction {rep.name!r}: none of its variants {list(rep.variants)} is a variant "
            f"of study {rep.study!r} at scale {rep.scale!r}"
        )
    if missing and not args.json:
        console(stderr=True).print(
            f"[yellow]reproduce[/]: {', '.join(missing)} not in study {rep.study!r} at scale "
            f"{rep.scale!r}: running the rest; the target cannot be judged yet"
        )
    run_study(
        rep.study,
        scale=rep.scale,
        seeds=seeds,
        overrides=dict(rep.overrides) or None,
        variants=found or None,
        command=_command(rep, args, seeds),
        **runner_kwargs(args),
    )
    index = write_report(args.out, studies=[rep.study])
    with Store(args.out, create=False) as store:
        outcome = stored(store, rep, seeds=seeds)
    page = Path(index).parent / "reproductions.html"
    if args.json:
        print(json.dumps({**outcome.to_dict(), "report": str(page)}))
    else:
        _print(outcome, page)
    return 0


def _print(outcome, page: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    from smithing.experiment.reproductions import format_time

    rep = outcome.reproduction
    con = console()
    con.print(f"[bold]{escape(rep.name)}[/]: {escape(rep.result)}")
    con.print(f"  {escape(rep.paper.cite())}")
    table = Table(title_justify="left")
    for c in ("", "mean ± std", "n", "min", "max", "paper", "target"):
        table.add_column(c)
    for row in outcome.rows:
        if row.missing:
            table.add_row(row.label, "not a variant of the study yet", "0", "", "", "", "")
            continue
        ours = "n/a" if not row.n else f"{rep.number(row.mean)} ± {rep.format(row.std)}"
        notes = []
        if row.diverged:
            notes.append(f"{row.diverged} diverged")
        if row.failed:
            notes.append(f"{row.failed} failed")
        if row.pending:
            notes.append(f"{row.pending} not complete")
        n = f"{row.n}" + (f" ({'; '.join(notes)})" if notes else "")
        cells = (rep.number(row.min), rep.number(row.max), rep.published_text())
        table.add_row(row.label, ours, n, *cells, rep.target_text())
    con.print(table)
    for row in outcome.rows:
        if row.chosen:
            pairs = ", ".join(f"seed {s}: {v}" for s, v in zip(row.seeds, row.chosen))
            con.print(f"  {escape(row.label)}: {escape(pairs)}")
    color = {True: "green", False: "red", None: "yellow"}[outcome.met]
    con.print(f"  target {escape(rep.target_text())}: [{color}]{escape(outcome.verdict)}[/]")
    con.print(
        f"  runs: {outcome.runs}, {format_time(outcome.seconds)} of training; sessions' wall "
        f"time {format_time(outcome.session_seconds)}"
    )
    if rep.recipe_status:
        con.print(f"  recipe: {escape(rep.recipe_status)}")
    if rep.departures:
        n = len(rep.departures)
        con.print(f"  {n} departure{'s' if n > 1 else ''} from the paper: see the report")
    con.print(f"  report: {page}")
