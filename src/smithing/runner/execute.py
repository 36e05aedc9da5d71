"""One unit of work: train a group of runs and return their results (never raise).

:func:`run_group` is what every executor runs (in this process, in a pool worker, or as a Ray
task). It is a plain top-level function of a plain dataclass, so it pickles; the worker finds
the study by importing the module that declares it. It trains the group with a checkpoint in
``<out>/checkpoints/<study>/``, writes progress to the store for ``smithing status``, and saves
the final models when asked. The driver records the results and only then removes the
checkpoint, so a kill at any moment loses at most one checkpoint interval.
"""

from __future__ import annotations

import hashlib
import inspect
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from smithing.experiment import RunResult, Study

__all__ = [
    "PendingRun",
    "GroupTask",
    "get_study",
    "checkpoint_path",
    "model_path",
    "make_checkpoint",
    "run_group",
]


@dataclass(frozen=True)
class PendingRun:
    run_id: int
    variant: str
    seed: int
    config: dict
    kind: str


@dataclass(frozen=True)
class GroupTask:
    """Everything a worker needs to train one group of runs."""

    study: str
    module: str  # the module declaring the study: imported by worker processes
    runs: tuple[PendingRun, ...]
    device: str
    out: str
    checkpoint_interval: float = 60.0
    save_models: bool = False
    threads: int | None = None
    progress_every: float = 5.0  # seconds between progress rows in the store
    options: dict = field(default_factory=dict)

    @property
    def run_ids(self) -> list[int]:
        return [r.run_id for r in self.runs]


def get_study(name: str, module: str | None = None) -> Study:
    """The registered study ``name``; ``module`` (the module that declares it) is imported
    first when the study is not registered yet, as worker processes do."""
    from smithing.experiment import STUDIES

    if module and name not in STUDIES:
        import importlib

        importlib.import_module(module)
    return STUDIES.get(name)


def checkpoint_path(out: str | Path, study: str, run_ids: list[int]) -> Path:
    """Where a group's checkpoint lives: named by its study and its (sorted) run ids."""
    key = hashlib.sha256(",".join(map(str, sorted(run_ids))).encode()).hexdigest()[:16]
    return Path(out) / "checkpoints" / study / f"group-{key}.safetensors"


def model_path(out: str | Path, study: str, run: PendingRun) -> Path:
    """Where ``--save-models`` keeps a run's final model."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run.variant)
    return Path(out) / "models" / study / f"run{run.run_id}-{safe}-seed{run.seed}.safetensors"


def make_checkpoint(task: GroupTask):
    from smithing.checkpoint import Checkpointer

    return Checkpointer(
        checkpoint_path(task.out, task.study, task.run_ids),
        min_interval_s=task.checkpoint_interval,
    )


def run_group(
    task: GroupTask, progress: Callable[[int, int], None] | None = None
) -> list[tuple[int, RunResult]]:
    """Train ``task``'s runs; a failure becomes ``failed`` results, never an exception."""
    if task.threads:
        torch.set_num_threads(task.threads)
    t0 = time.perf_counter()
    reporter = _ProgressWriter(task, progress)
    try:
        study = get_study(task.study, task.module)
        ckpt = make_checkpoint(task)
        from smithing.compiled import use_compile
        from smithing.precision import use_precision

        with (
            use_precision(task.options.get("precision", "fp32")),
            use_compile(task.options.get("compile", False)),
        ):
            if task.runs[0].kind == "mlp":
                return _run_mlp(study, task, ckpt, reporter)
            return _run_custom(study, task, ckpt, reporter)
    except Exception as e:  # noqa: BLE001 - a failing run must not kill the sweep
        msg = f"{type(e).__name__}: {e}"
        tb = traceback.format_exc(limit=8)
        secs = time.perf_counter() - t0
        return [
            (r.run_id, RunResult("failed", message=msg, extra={"traceback": tb}, seconds=secs))
            for r in task.runs
        ]
    finally:
        reporter.close()


def _run_mlp(study: Study, task: GroupTask, ckpt, reporter) -> list[tuple[int, RunResult]]:
    from smithing.experiment.mlp import MLPConfig, load_data, train_group, train_one

    cfgs = [MLPConfig.from_dict(r.config) for r in task.runs]
    data = load_data(cfgs[0], task.device)
    epochs = cfgs[0].epochs
    if len(cfgs) > 1:
        trained = train_group(
            cfgs,
            task.device,
            progress=lambda e, recs: reporter(e, epochs),
            data=data,
            checkpoint=ckpt,
        )
    else:
        trained = [
            train_one(
                cfgs[0],
                task.device,
                progress=lambda e, rec: reporter(e, epochs),
                data=data,
                checkpoint=ckpt,
            )
        ]
    out = []
    for r, cfg, (model, hist) in zip(task.runs, cfgs, trained):
        extra = {
            "best_epoch": hist.best_epoch,
            "stop_reason": hist.stop_reason,
            "epochs_run": hist.epochs_run,
        }
        if study.extract is not None:
            extra.update(study.extract(model, hist, data, cfg))
        if task.save_models:
            from smithing.models import save_model

            path = model_path(task.out, task.study, r)
            save_model(model, path, config=cfg.to_dict(), metrics=hist.final)
            extra["model_path"] = str(path)
        res = RunResult(hist.status, hist.final, hist.epochs, extra, hist.message, hist.seconds)
        out.append((r.run_id, res))
    return out


def _run_custom(study: Study, task: GroupTask, ckpt, reporter) -> list[tuple[int, RunResult]]:
    if study.run is None:
        raise ValueError(f"study {study.name!r} has runs of kind {task.runs[0].kind!r} but no run")
    params = inspect.signature(study.run).parameters
    out = []
    for r in task.runs:
        kw = {}
        if "checkpoint" in params:
            kw["checkpoint"] = ckpt if len(task.runs) == 1 else ckpt.sub(f"run{r.run_id}")
        if "progress" in params:
            kw["progress"] = reporter
        res = study.run(r.config, r.seed, task.device, **kw)
        if task.save_models and res.model is not None:
            from smithing.models import save_model

            path = model_path(task.out, task.study, r)
            models = res.model if isinstance(res.model, dict) else {"": res.model}
            res.extra["model_paths"] = {}
            for name, obj in models.items():
                p = path.with_name(f"{path.stem}.{name}{path.suffix}") if name else path
                save_model(obj, p, config=r.config, metrics=res.final)
                res.extra["model_paths"][name or "model"] = str(p)
        res.model = None  # never stored in the database
        out.append((r.run_id, res))
    return out


class _ProgressWriter:
    """``progress(epoch, epochs, phase=None)``: forwards ``(epoch, epochs)`` to the caller's
    callback and, at most every ``task.progress_every`` seconds, writes epoch, epochs, the
    phase and the phase's ETA to the store. A multi-phase run (a DBN's ``layer0``, ``layer1``,
    ..., ``finetune``) names its phase; the ETA is that phase's, timed from when the previous
    phase reported its last epoch (a resumed phase from its first epoch after the resume)."""

    def __init__(self, task: GroupTask, forward: Callable[[int, int], None] | None) -> None:
        self.task, self.forward = task, forward
        self.t0 = time.time()
        self.first_epoch: int | None = None
        self.phase: str | None = None
        self.last_call: float | None = None
        self.last_write = 0.0
        self._store = None

    def __call__(self, epoch: int, epochs: int, phase: str | None = None) -> None:
        if self.forward is not None:
            self.forward(epoch, epochs)
        now = time.time()
        if phase != self.phase:  # a new phase: its own clock, from the previous phase's end
            self.phase, self.first_epoch, self.last_write = phase, None, 0.0
            if self.last_call is not None:
                self.t0 = self.last_call
        self.last_call = now
        if self.first_epoch is None:
            self.first_epoch = epoch - 1  # a resumed run starts past epoch 0
        if now - self.last_write < self.task.progress_every and epoch < epochs:
            return
        self.last_write = now
        done = epoch - self.first_epoch
        eta = (now - self.t0) / done * (epochs - epoch) if done > 0 and epochs else None
        try:
            if self._store is None:
                from smithing.experiment.store import Store

                self._store = Store(self.task.out, create=False)
            self._store.set_progress(
                self.task.run_ids,
                {"epoch": epoch, "epochs": epochs, "phase": phase, "eta_s": eta, "updated": now},
            )
        except Exception:  # noqa: BLE001 - progress is best effort; training goes on
            pass

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
