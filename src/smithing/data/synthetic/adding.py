"""The adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015's version)."""

from __future__ import annotations

from pathlib import Path

import torch

from smithing.data.base import Dataset
from smithing.data.synthetic.common import (
    _check_int,
    _check_sizes,
    _splits,
)

__all__ = [
    "adding_baseline_mse",
    "adding_problem",
    "load_adding",
]

# ------------------------------------------------------------------------------------------------
# adding problem
# ------------------------------------------------------------------------------------------------


def adding_problem(
    n: int, T: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences of the adding problem of length ``T``: ``x`` (n, T, 2), ``y`` (n,).

    Recipe (Arjovsky, Shah & Bengio's uRNN code, as used by Le et al. 2015): channel 0 holds
    values ``v_t ~ U[0, 1)``; channel 1 is a marker that is 1 at exactly two steps,
    ``i ~ U{0, ..., T//2 - 1}`` in the first half and ``j ~ U{T//2, ..., T - 1}`` in the second,
    0 elsewhere; the target is ``y = v_i + v_j``. Departure: for odd ``T`` the second marker may
    also fall on the last step (the uRNN code, with ``j ~ T//2 + U{0, ..., T//2 - 1}``, never
    uses it); for even ``T`` the two recipes agree. Hochreiter & Schmidhuber's original draws
    values in [-1, 1] and places the first marker among the first 10 steps.
    """
    _check_int("n", n, 0)
    _check_int("T", T, 2)
    half = T // 2
    values = torch.rand(n, T, generator=generator)  # (n, T) v_t ~ U[0, 1)
    first = torch.randint(0, half, (n,), generator=generator)  # (n,) in the first half
    second = torch.randint(half, T, (n,), generator=generator)  # (n,) in the second half
    marker = torch.zeros(n, T)
    rows = torch.arange(n)
    marker[rows, first] = 1.0
    marker[rows, second] = 1.0
    x = torch.stack([values, marker], dim=-1)  # (n, T, 2)
    y = values[rows, first] + values[rows, second]  # (n,) y = v_i + v_j
    return x, y


def adding_baseline_mse() -> float:
    """MSE of always predicting 1, the mean target: Var(v_i + v_j) = 2 * (1/12) = 1/6."""
    return 1.0 / 6.0


def load_adding(
    data_dir: Path | None = None,
    *,
    T: int = 50,
    n_train: int = 10_000,
    n_valid: int = 1_000,
    n_test: int = 1_000,
    seed: int = 0,
) -> Dataset:
    """The adding problem with sequences of length ``T`` (see :func:`adding_problem`)."""
    _check_sizes(n_train, n_valid, n_test, seed)
    _check_int("T", T, 2)
    train, valid, test = _splits(
        lambda n, g: adding_problem(n, T, g), (n_train, n_valid, n_test), seed
    )
    return Dataset(
        name="adding",
        train=train,
        valid=valid,
        test=test,
        task="regression",
        n_classes=0,
        input_shape=(T, 2),
        description=f"adding problem, T={T}: sum of the two marked values in [0, 1] "
        f"(predicting 1 scores MSE 1/6)",
        meta={"T": T, "seed": seed, "baseline_mse": adding_baseline_mse()},
    )
