"""Where groups of runs execute: this process, a pool of processes, or a Ray cluster.

Each executor has ``submit(task) -> concurrent.futures.Future`` (of :func:`run_group`'s result),
``capacity`` (how many groups it runs at once) and ``shutdown()``. The driver claims leases,
submits, records results and renews the leases; executors only execute.
"""

from __future__ import annotations

import os
from concurrent.futures import Future

from smithing._optional import require
from smithing.runner.execute import GroupTask, run_group

__all__ = ["EXECUTORS", "InlineExecutor", "ProcessExecutor", "RayExecutor", "make_executor"]

EXECUTORS = ("local", "ray")


class InlineExecutor:
    """Runs each group in this process when submitted (``--jobs 1``)."""

    capacity = 1

    def __init__(self, progress=None) -> None:
        self.progress = progress

    def submit(self, task: GroupTask) -> Future:
        fut: Future = Future()
        fut.set_result(run_group(task, self.progress(task) if self.progress else None))
        return fut

    def shutdown(self, cancel: bool = False) -> None:
        pass


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class ProcessExecutor:
    """A pool of ``jobs`` spawned worker processes on this machine (``--jobs N``), each with
    ``cpu_count // jobs`` torch threads."""

    def __init__(self, jobs: int) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.capacity = jobs
        threads = max(1, (os.cpu_count() or 1) // jobs)
        self.pool = ProcessPoolExecutor(
            jobs, mp_context=mp.get_context("spawn"), initializer=_set_threads, initargs=(threads,)
        )

    def submit(self, task: GroupTask) -> Future:
        return self.pool.submit(run_group, task)

    def shutdown(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


class RayExecutor:
    """Groups as Ray tasks on a Ray cluster (``--executor ray [--ray-address ADDRESS]``).

    Without an address, and when no cluster is running, a local Ray starts on this machine's
    cores. The output folder must be reachable by every Ray worker at the same path (a shared
    file system): tasks write checkpoints and progress there, and a task that Ray retries
    after losing its worker resumes from the group's checkpoint. ``jobs`` caps how many groups
    run at once (default: the cluster's CPU count)."""

    def __init__(self, address: str | None = None, jobs: int | None = None, num_cpus=None):
        ray = _import_ray()
        self.ray = ray
        self._started = False
        if not ray.is_initialized():
            kw = {"include_dashboard": False, "log_to_driver": False}
            if address:
                ray.init(address=address, **kw)
            else:
                ray.init(num_cpus=num_cpus, **kw)
                self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.capacity = jobs or max(1, cpus)
        self._remote = ray.remote(max_retries=3, retry_exceptions=False)(run_group)

    def submit(self, task: GroupTask) -> Future:
        return self._remote.remote(task).future()

    def shutdown(self, cancel: bool = False) -> None:
        if self._started:
            self.ray.shutdown()


def _import_ray():
    return require("ray", "--executor ray")


def make_executor(
    executor: str = "local",
    jobs: int = 1,
    ray_address: str | None = None,
    progress=None,
):
    """The executor named ``executor`` (``local``: in-process for one job, else a process
    pool of ``jobs``; ``ray``)."""
    from smithing._registry import check

    check(executor in EXECUTORS, "executor", executor, f"one of {EXECUTORS}")
    check(isinstance(jobs, int) and jobs >= 1, "jobs", jobs, "a positive int")
    if executor == "ray":
        return RayExecutor(ray_address, jobs if jobs > 1 else None)
    if jobs == 1:
        return InlineExecutor(progress)
    return ProcessExecutor(jobs)
