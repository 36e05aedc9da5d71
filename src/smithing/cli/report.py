"""``smithing report``: (re)write the HTML report of an output directory."""

from __future__ import annotations

NAME = "report"
HELP = "(re)write the HTML report of an output directory"


def add_arguments(p) -> None:
    p.add_argument("--out", default="smithing-out")


def run(args) -> int:
    import smithing.studies  # noqa: F401  (registers the studies)
    from smithing.experiment.store import Store
    from smithing.report import write_report

    Store(args.out, create=False).close()  # one line if there is no (usable) store
    print(write_report(args.out))
    return 0
