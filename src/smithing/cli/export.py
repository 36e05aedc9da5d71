"""``smithing export``: the stored results as tables (CSV) for pandas and friends."""

from __future__ import annotations

from pathlib import Path

NAME = "export"
HELP = "export the stored results as tables"


def add_arguments(ex) -> None:
    ex.add_argument("--out", default="smithing-out")
    ex.add_argument("--format", choices=["csv"], default="csv")
    ex.add_argument("--to", default=None, help="folder for the files (default OUT/export)")


def run(args) -> int:
    from smithing.experiment.store import Store

    with Store(args.out, create=False) as store:
        paths = store.export_csv(args.to or Path(args.out) / "export")
    for p in paths:
        print(p)
    return 0
