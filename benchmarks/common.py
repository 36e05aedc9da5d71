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


def load_or_synthetic(name: str, device: torch.device, n_train: int = 60000):
    """Dataset ``name`` on ``device``, or, when its files are absent (a bare GPU machine), random
    MNIST-shaped data (784 inputs in [0, 1], 10 classes) with a message: the timings hold, the
    losses mean nothing."""
    from smithing.data import load
    from smithing.data.base import Dataset, Split

    try:
        return load(name, device=device)
    except Exception as err:  # noqa: BLE001 - any failure to find the files
        print(
            f"NOTE: {name} unavailable ({type(err).__name__}: {str(err).splitlines()[0]}); "
            "timing random MNIST-shaped data instead (set SMITHING_DATA_DIR)"
        )
    g = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        return Split(torch.rand(n, 784, generator=g), torch.randint(0, 10, (n,), generator=g))

    data = Dataset(
        "synthetic-mnist",
        split(n_train),
        split(1000),
        split(1000),
        n_classes=10,
        input_shape=(784,),
    )
    return data.to(device)
