"""``smithing tour``: every study of the tour at quick scale, then one report."""

from __future__ import annotations

import json
import time
from pathlib import Path

from smithing.cli._common import console, positive_int, print_summary, study_args

NAME = "tour"
HELP = "run every study at quick scale and write the report"


def add_arguments(tour) -> None:
    study_args(tour)
    tour.add_argument("--seeds", type=positive_int, default=None)
    tour.add_argument(
        "--only", nargs="+", default=None, metavar="STUDY", help="run only these studies"
    )
    tour.add_argument("--json", action="store_true")


def run(args) -> int:
    from smithing.cli._common import runner_kwargs
    from smithing.experiment import STUDIES
    from smithing.report import write_report
    from smithing.runner import run_study
    from smithing.studies import ordered

    kw = runner_kwargs(args)
    names = [s.name for s in ordered() if s.in_tour]
    if args.only:
        for n in args.only:
            STUDIES.get(n)
        names = [n for n in names if n in args.only]
    out = {}
    t0 = time.perf_counter()
    for name in names:
        if not args.quiet and not args.json:
            console(stderr=True).print(f"[bold]tour[/]: study {name}")
        out[name] = run_study(name, scale="quick", seeds=args.seeds, **kw)
    index = write_report(args.out)
    if args.json:
        print(
            json.dumps(
                {
                    "studies": out,
                    "report": str(index),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
        )
    else:
        for s in out.values():
            print_summary(s, args)
        console().print(f"report: {Path(index)}")
    return 0
