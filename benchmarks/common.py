"""Shared helpers of the benchmarks: timing with device synchronization, the machine line."""

from __future__ import annotations

import os
import platform
import time

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls (synchronized)."""
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def machine(device: torch.device) -> str:
    s = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    if device.type == "cuda":
        s += f", {torch.cuda.get_device_name(device)}"
    return s
