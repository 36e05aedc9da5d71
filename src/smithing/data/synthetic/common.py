"""What every synthetic dataset shares: the image size, seeded streams, size checks, splits."""

from __future__ import annotations

import torch

from smithing._registry import check
from smithing.data.base import Split

__all__ = [
    "IMAGE_SHAPE",
    "N_PIXELS",
    "SIDE",
]

SIDE = 28  # images are SIDE x SIDE
N_PIXELS = SIDE * SIDE
IMAGE_SHAPE = (SIDE, SIDE)

_SPLITS = ("train", "valid", "test")


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _stream(seed: int, stream: int) -> torch.Generator:
    """An independent CPU generator per (seed, stream): streams 0, 1, 2 = train, valid, test."""
    return torch.Generator().manual_seed(seed * 16 + stream)


def _check_int(name: str, value: object, low: int) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    check(ok, name, value, f"an integer >= {low}")


def _check_sizes(n_train: int, n_valid: int, n_test: int, seed: int) -> None:
    _check_int("n_train", n_train, 1)
    _check_int("n_valid", n_valid, 0)
    _check_int("n_test", n_test, 0)
    _check_int("seed", seed, 0)


def _splits(make, sizes: tuple[int, int, int], seed: int) -> list[Split]:
    """``make(n, generator) -> (x, y)`` called once per split with that split's generator."""
    return [Split(*make(n, _stream(seed, i))) for i, n in enumerate(sizes)]
