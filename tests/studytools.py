"""Test helper: run a study and write its report, as ``smithing run`` does (the runner itself
never writes the report)."""

import smithing.studies  # noqa: F401  (registers the studies)
from smithing.report import write_report
from smithing.runner import run_study as _run_study


def run_study(name, *, report=True, **kw):
    summary = _run_study(name, **kw)
    if report:
        write_report(kw.get("out", "smithing-out"), studies=[name])
    return summary
