"""Run a study: expand it into runs, skip the complete ones, train the rest, store everything.

Pending ``"mlp"`` runs that differ only in per-member fields (seed, learning rate, initializer,
penalty strengths; see :data:`smithing.experiment.mlp.PER_MEMBER_FIELDS`) are trained together as
one batched ensemble; other runs go one at a time. ``jobs > 1`` spreads the groups over a pool
of worker processes (CPU); the parent process alone writes the store.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import torch

from smithing.experiment import RunResult, Study, Variant
from smithing.experiment.store import Store

MAX_MEMBERS = 128  # largest ensemble trained in one go


@dataclass(frozen=True)
class PendingRun:
    run_id: int
    variant: str
    seed: int
    config: dict
    kind: str


def get_study(name: str, module: str | None = None) -> Study:
    """The registered study ``name``; ``module`` (the module that declares it) is imported
    first when given, as worker processes do."""
    from smithing.experiment import STUDIES

    if module is not None and name not in STUDIES:
        import importlib

        importlib.import_module(module)
    return STUDIES.get(name)


def environment(device: str) -> dict:
    """Software versions and the machine, recorded with every session and in the report."""
    import numpy
    import sklearn

    import smithing

    env = {
        "smithing": smithing.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def group_runs(pending: list[PendingRun]) -> list[list[PendingRun]]:
    """Batchable MLP runs grouped (at most MAX_MEMBERS each); the rest alone."""
    from smithing.experiment.mlp import MLPConfig

    groups: dict[str, list[PendingRun]] = {}
    singles: list[list[PendingRun]] = []
    for r in pending:
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


def execute_group(
    study_name: str,
    group: list[PendingRun],
    device: str,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[int, RunResult]]:
    """Train one group; failures become ``failed`` results, never exceptions."""
    study = get_study(study_name)
    t0 = time.perf_counter()
    try:
        if group[0].kind == "mlp":
            return _execute_mlp(study, group, device, progress)
        out = []
        for r in group:
            res = study.run(r.config, r.seed, device)
            out.append((r.run_id, res))
        return out
    except Exception as e:  # noqa: BLE001 - a failing run must not kill the sweep
        msg = f"{type(e).__name__}: {e}"
        tb = traceback.format_exc(limit=6)
        return [
            (
                r.run_id,
                RunResult(
                    "failed", message=msg, extra={"traceback": tb}, seconds=time.perf_counter() - t0
                ),
            )
            for r in group
        ]


def _execute_mlp(study: Study, group: list[PendingRun], device: str, progress):
    from smithing.experiment.mlp import MLPConfig, load_data, train_group, train_one

    cfgs = [MLPConfig.from_dict(r.config) for r in group]
    data = load_data(cfgs[0], device)
    epochs = cfgs[0].epochs
    if len(group) > 1:
        cb = (lambda e, recs: progress(e, epochs)) if progress else None
        trained = train_group(cfgs, device, progress=cb, data=data)
    else:
        cb = (lambda e, rec: progress(e, epochs)) if progress else None
        trained = [train_one(cfgs[0], device, progress=cb, data=data)]
    out = []
    for r, cfg, (model, hist) in zip(group, cfgs, trained):
        extra = {
            "best_epoch": hist.best_epoch,
            "stop_reason": hist.stop_reason,
            "epochs_run": hist.epochs_run,
        }
        if study.extract is not None:
            extra.update(study.extract(model, hist, data, cfg))
        out.append(
            (
                r.run_id,
                RunResult(hist.status, hist.final, hist.epochs, extra, hist.message, hist.seconds),
            )
        )
    return out


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def _pool_execute(args):
    study_name, module, group, device = args
    get_study(study_name, module)
    return execute_group(study_name, group, device)


def run_study(
    name: str,
    *,
    scale: str = "quick",
    dataset: str | None = None,
    seeds: int | None = None,
    device: str = "cpu",
    out: str = "smithing-out",
    jobs: int = 1,
    quiet: bool = False,
    overrides: dict | None = None,
    command: str | None = None,
    report: bool = True,
    variants: list[str] | None = None,
) -> dict:
    """Run (or resume) study ``name``; return a summary (per variant mean/std test error)."""
    study = get_study(name)
    if jobs < 1:
        raise ValueError(f"jobs={jobs} is invalid: expected a positive int")
    runs = study.expand(scale, dataset, seeds, overrides, only=variants)
    _validate(runs)
    store = Store(out)
    try:
        store.reset_interrupted(name)
        ids = store.ensure_runs(name, scale, [(v.name, s, v.config) for v, s in runs])
        pending = [
            PendingRun(rid, v.name, s, v.config, v.kind)
            for rid, (v, s) in zip(ids, runs)
            if store.status(rid) not in ("done", "diverged")
        ]
        session = store.start_session(
            name,
            scale,
            command or " ".join(["smithing", *sys.argv[1:]]),
            environment(device),
            run_ids=ids,
        )
        groups = group_runs(pending)
        _execute_all(
            store,
            name,
            groups,
            device,
            jobs,
            quiet,
            total=len(ids),
            already=len(ids) - len(pending),
        )
        store.end_session(session)
        results = store.results(name, scale, run_ids=ids)
    finally:
        store.close()
    if report:
        from smithing.report import write_report

        write_report(out, studies=[name])
    return summarize(results, study.metric, study.metric_percent)


def _validate(runs: list[tuple[Variant, int]]) -> None:
    """Fail fast on bad configurations (unknown names, bad values) before any training."""
    from smithing.experiment.mlp import MLPConfig

    seen = set()
    for v, _ in runs:
        if v.kind == "mlp" and v.name not in seen:
            seen.add(v.name)
            cfg = MLPConfig.from_dict(v.config)
            from smithing import optim
            from smithing.data import DATASETS, names

            names()
            DATASETS.get(cfg.dataset)
            optim.OPTIMIZERS.get(cfg.optimizer)
            if cfg.init != "default":
                from smithing import init

                init.INITIALIZERS.get(cfg.init)


def _execute_all(
    store: Store, name: str, groups, device: str, jobs: int, quiet: bool, total: int, already: int
) -> None:
    done = already
    if quiet or not groups:
        disp = None
    else:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        disp = Progress(
            TextColumn(f"[bold]{name}[/] runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        disp.start()
        task = disp.add_task("runs", total=total, completed=done, info="")

    def on_epoch(group_desc):
        def cb(epoch, epochs):
            if disp is not None:
                disp.update(task, info=f"{group_desc}: epoch {epoch}/{epochs}")

        return cb

    def record(results):
        nonlocal done
        for rid, res in results:
            try:
                store.record(rid, res)
            except Exception as e:  # noqa: BLE001 - an unrecordable result fails that run only
                store.record(
                    rid,
                    RunResult(
                        "failed",
                        message=f"could not store the result: {type(e).__name__}: {e}",
                        seconds=res.seconds,
                    ),
                )
            done += 1
        if disp is not None:
            disp.update(task, completed=done)

    try:
        if jobs == 1:
            for g in groups:
                store.mark_running([r.run_id for r in g])
                desc = f"{g[0].variant} x{len(g)}" if len(g) > 1 else f"{g[0].variant}/{g[0].seed}"
                record(execute_group(name, g, device, on_epoch(desc)))
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            threads = max(1, (os.cpu_count() or 1) // jobs)
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(
                jobs, mp_context=ctx, initializer=_worker_init, initargs=(threads,)
            ) as pool:
                futs = {}
                for g in groups:
                    store.mark_running([r.run_id for r in g])
                    module = get_study(name).module
                    futs[pool.submit(_pool_execute, (name, module, g, device))] = g
                for f in as_completed(futs):
                    record(f.result())
    finally:
        if disp is not None:
            disp.stop()


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
