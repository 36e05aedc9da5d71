"""Run a study: expand it into runs, claim them through leases, train, record, resume.

``run_study`` is the driver. It expands the study into runs (variants x seeds), validates
every configuration once before any training, and loops: it groups the runs that are not
complete (pending ``"mlp"`` runs that differ only in per-member fields train as one batched
ensemble, see :data:`smithing.experiment.mlp.PER_MEMBER_FIELDS`; other runs alone), claims a
group's leases in the store, hands the group to an executor (this process, a process pool, or
Ray), records the results and removes the group's checkpoint. Any number of drivers may work
on one output folder at once: each run is executed by the one driver holding its lease, and
the runs of a driver killed mid-way are taken over when its leases expire, from their
checkpoints. The runner never writes the report (the CLI asks for it after a run).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field

import torch

from smithing.experiment import STUDIES, RunResult, Study
from smithing.experiment.store import COMPLETE_STATUSES, Store, worker_name
from smithing.experiment.validate import validate_runs
from smithing.runner.execute import (
    GroupTask,
    PendingRun,
    checkpoint_path,
    get_study,
)
from smithing.runner.executors import make_executor

MAX_MEMBERS = 128  # largest ensemble trained in one go
LEASE_TTL = 120.0  # seconds a claimed run stays ours without a heartbeat

__all__ = ["LEASE_TTL", "MAX_MEMBERS", "PendingRun", "get_study", "group_runs", "run_study"]


def environment(device: str, precision: str = "fp32", compile: bool = False) -> dict:
    """Software versions and the machine, recorded with every session and in the report."""
    import numpy

    from smithing._version import __version__

    env = {
        "smithing": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if precision != "fp32" or compile:  # (older sessions recorded neither: fp32, eager)
        env["precision"], env["compile"] = precision, compile
    try:
        import sklearn

        env["scikit-learn"] = sklearn.__version__
    except ImportError:
        pass
    if str(device).startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def group_runs(pending: list[PendingRun]) -> list[list[PendingRun]]:
    """Batchable MLP runs grouped (at most MAX_MEMBERS each, in run order); the rest alone.

    Deterministic in the set of runs, so that a driver resuming after a kill forms the same
    groups and finds their checkpoints."""
    from smithing.experiment.mlp import MLPConfig

    groups: dict[str, list[PendingRun]] = {}
    singles: list[list[PendingRun]] = []
    for r in sorted(pending, key=lambda r: r.run_id):
        if r.kind != "mlp":
            singles.append([r])
            continue
        cfg = MLPConfig.from_dict(r.config)
        if cfg.clip_norm is not None:
            singles.append([r])
            continue
        groups.setdefault(cfg.group_key(), []).append(r)
    out = []
    for g in groups.values():
        for i in range(0, len(g), MAX_MEMBERS):
            out.append(g[i : i + MAX_MEMBERS])
    return out + singles


class _Heartbeat(threading.Thread):
    """Renews ``owner``'s leases every ``ttl / 4`` seconds (its own SQLite connection)."""

    def __init__(self, out: str, owner: str, ttl: float) -> None:
        super().__init__(daemon=True, name="smithing-heartbeat")
        self.out, self.owner, self.ttl = out, owner, ttl
        self.stopped = threading.Event()

    def run(self) -> None:
        store = Store(self.out, create=False)
        try:
            while not self.stopped.wait(self.ttl / 4):
                # a busy database: try again at the next beat
                with contextlib.suppress(Exception):
                    store.heartbeat(self.owner, self.ttl)
        finally:
            store.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


def run_study(
    name: str | Study,
    *,
    scale: str = "quick",
    dataset: str | None = None,
    seeds: int | None = None,
    device: str = "cpu",
    out: str = "smithing-out",
    jobs: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    quiet: bool = False,
    overrides: dict | None = None,
    command: str | None = None,
    variants: list[str] | None = None,
    checkpoint_interval: float = 60.0,
    save_models: bool = False,
    lease_ttl: float = LEASE_TTL,
    poll: float | None = None,
    precision: str = "fp32",
    compile: bool = False,
) -> dict:
    """Run (or resume, or join) study ``name``; return a summary (per variant mean/std of the
    study's metric).

    Args:
        name: a registered study's name, or a :class:`Study`.
        scale, dataset, seeds, overrides, variants: what to run (see :meth:`Study.expand`).
        device: where to train.
        out: the output folder (store, checkpoints, saved models). Several drivers may share it.
        jobs, executor, ray_address: how to execute: ``executor="local"`` runs in this process
            (``jobs=1``) or a pool of ``jobs`` processes; ``"ray"`` runs groups as Ray tasks.
        checkpoint_interval: seconds between checkpoints of a running group (at most one per
            epoch; 0: every epoch).
        save_models: keep each run's final model under ``<out>/models/``.
        lease_ttl: seconds a claimed run stays claimed without a heartbeat (a killed driver's
            runs are taken over after this long).
        poll: seconds between looks at the store while other drivers hold the remaining runs.
        precision, compile: ``--precision`` (``fp32``, ``tf32``, ``bf16``) and ``--compile``
            of every run (:mod:`smithing.precision`, :mod:`smithing.compiled`), in force in
            whichever process trains it; recorded in the session's environment. (The runs'
            configurations do not include them: runs of one store share one precision.)
    """
    study = name if isinstance(name, Study) else get_study(name)
    if study.name not in STUDIES:
        STUDIES.register(study.name, study, description=study.description)
    from smithing._registry import check

    check(isinstance(jobs, int) and jobs >= 1, "jobs", jobs, "a positive int")
    from smithing.precision import check_precision

    check_precision(precision)
    check(isinstance(compile, bool), "compile", compile, "True or False")
    check(lease_ttl > 0, "lease_ttl", lease_ttl, "a positive number of seconds")
    check(checkpoint_interval >= 0, "checkpoint_interval", checkpoint_interval, "seconds >= 0")
    runs = study.expand(scale, dataset, seeds, overrides, only=variants)
    validate_runs(study, runs)
    poll = poll if poll is not None else min(5.0, lease_ttl / 4)
    owner = f"{worker_name()}:{uuid.uuid4().hex[:6]}"
    started = time.time()
    store = Store(out)
    try:
        ids = store.ensure_runs(study.name, scale, [(v.name, s, v.config) for v, s in runs])
        by_id = {
            rid: PendingRun(rid, v.name, s, v.config, v.kind) for rid, (v, s) in zip(ids, runs)
        }
        session = store.start_session(
            study.name,
            scale,
            command or " ".join(["smithing", *sys.argv[1:]]),
            environment(device, precision, compile),
            run_ids=ids,
        )
        display = None if quiet else _Display(study.name, len(ids))
        ex = make_executor(
            executor, jobs, ray_address, progress=display.progress if display else None
        )
        beat = _Heartbeat(out, owner, lease_ttl)
        beat.start()
        drv = _Driver(
            store=store,
            study=study,
            by_id=by_id,
            ex=ex,
            owner=owner,
            started=started,
            device=str(device),
            out=str(out),
            interval=checkpoint_interval,
            save_models=save_models,
            ttl=lease_ttl,
            poll=poll,
            display=display,
            options={"precision": precision, "compile": compile},
        )
        clean_exit = False
        try:
            drv.drive()
            clean_exit = True
        finally:
            beat.stop()
            if not clean_exit:  # Ctrl-C or an error: give our runs back at once
                for task in [*drv.in_flight.values(), *drv.claimed]:
                    store.release(task.run_ids, owner)
            ex.shutdown(cancel=not clean_exit)
            if display is not None:
                display.stop()
        store.end_session(session)
        results = store.results(study.name, scale, run_ids=ids)
    finally:
        store.close()
    return summarize(results, study.metric, study.metric_percent)


@dataclass
class _Driver:
    """One ``run_study`` call's loop: claim groups, submit them, record what comes back."""

    store: Store
    study: Study
    by_id: dict[int, PendingRun]
    ex: object
    owner: str
    started: float
    device: str
    out: str
    interval: float
    save_models: bool
    ttl: float
    poll: float
    display: object | None
    options: dict = field(default_factory=dict)  # GroupTask.options: precision, compile
    in_flight: dict = field(default_factory=dict)  # future -> GroupTask
    claimed: list = field(default_factory=list)  # claimed, being submitted (inline: training)
    attempted: set = field(default_factory=set)  # runs we trained (a failure is not retried)

    def drive(self) -> None:
        while True:
            st = self.store.statuses(self.by_id)
            todo = [
                r
                for rid, r in self.by_id.items()
                if st[rid] not in COMPLETE_STATUSES and rid not in self.attempted
            ]
            if self.display is not None:
                self.display.completed(
                    sum(s in COMPLETE_STATUSES or s == "failed" for s in st.values())
                )
            busy = {rid for g in self.in_flight.values() for rid in g.run_ids}
            for g in group_runs([r for r in todo if r.run_id not in busy]):
                if len(self.in_flight) >= self.ex.capacity:
                    break
                rids = [r.run_id for r in g]
                if not self.store.claim(
                    rids, self.owner, self.ttl, retry_failed_before=self.started
                ):
                    continue  # another driver holds (some of) these runs
                task = GroupTask(
                    self.study.name,
                    self.study.module,
                    tuple(g),
                    self.device,
                    self.out,
                    self.interval,
                    self.save_models,
                    options=self.options,
                )
                # claimed and submitted: released at once if we are interrupted meanwhile
                self.claimed.append(task)
                self.in_flight[self.ex.submit(task)] = task
                self.claimed.remove(task)
            if not self.in_flight:
                # what is left is held by other drivers' live leases, or failed after we started
                waiting = [r for r in todo if st[r.run_id] != "failed"]
                if not waiting:
                    return
                time.sleep(self.poll)
                continue
            done, _ = wait(list(self.in_flight), timeout=self.poll, return_when=FIRST_COMPLETED)
            for fut in done:
                task = self.in_flight.pop(fut)
                try:
                    results = fut.result()
                except Exception as e:  # noqa: BLE001 - e.g. a Ray worker lost for good
                    results = [
                        (rid, RunResult("failed", message=f"{type(e).__name__}: {e}"))
                        for rid in task.run_ids
                    ]
                _record(self.store, results, self.owner)
                self.attempted.update(task.run_ids)
                _remove_checkpoint(self.out, self.study.name, task.run_ids)


def _record(store: Store, results, owner: str) -> None:
    for rid, res in results:
        try:
            store.record(rid, res, owner=owner)
        except Exception as e:  # noqa: BLE001 - an unrecordable result fails that run only
            store.record(
                rid,
                RunResult(
                    "failed",
                    message=f"could not store the result: {type(e).__name__}: {e}",
                    seconds=res.seconds,
                ),
                owner=owner,
            )


def _remove_checkpoint(out, study: str, run_ids: list[int]) -> None:
    from smithing.checkpoint import Checkpointer

    Checkpointer(checkpoint_path(out, study, run_ids)).remove()


class _Display:
    """One rich progress bar: runs complete, and the epoch of the group in this process."""

    def __init__(self, study: str, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.prog = Progress(
            TextColumn(f"[bold]{study}[/] runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.prog.start()
        self.task = self.prog.add_task("runs", total=total, completed=0, info="")

    def completed(self, n: int) -> None:
        self.prog.update(self.task, completed=n)

    def progress(self, task: GroupTask):
        g = task.runs
        desc = f"{g[0].variant} x{len(g)}" if len(g) > 1 else f"{g[0].variant}/{g[0].seed}"

        def cb(epoch: int, epochs: int) -> None:
            self.prog.update(self.task, info=f"{desc}: epoch {epoch}/{epochs}")

        return cb

    def stop(self) -> None:
        self.prog.stop()


def summarize(results, metric: str = "test_error", percent: bool = True) -> dict:
    """``--json`` output: the study and per variant the mean/std of the final test error
    (``test_error_mean`` / ``test_error_std``), or of the study's own ``metric`` (``mean`` /
    ``std``; both are given, ``None`` where a run has no such number)."""
    from smithing.experiment import mean_std_ci

    def clean(x):
        return None if math.isnan(x) else x

    out = {"study": results.study, "metric": metric, "percent": percent, "variants": {}}
    for v in results.variants():
        runs = results.of(v)
        mean, std, _, _ = mean_std_ci(results.finals(v, "test_error"))
        m_mean, m_std, _, _ = mean_std_ci(results.finals(v, metric))
        out["variants"][v] = {
            "test_error_mean": clean(mean),
            "test_error_std": clean(std),
            "mean": clean(m_mean),
            "std": clean(m_std),
            "runs": len(runs),
            "done": sum(r.status == "done" for r in runs),
            "diverged": sum(r.status == "diverged" for r in runs),
            "failed": sum(r.status == "failed" for r in runs),
        }
    return out
