"""The runner: studies to runs, leases, executors (this process, a process pool, Ray),
checkpoints and resume. It reads the study registry and writes the store; it never writes the
report."""

from smithing.runner.runner import run_study, summarize

__all__ = ["run_study", "summarize"]
