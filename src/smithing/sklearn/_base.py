"""What every estimator of :mod:`smithing.sklearn` shares: the device, the seeds, the tensors.

* :func:`resolve_device`: ``"auto"`` is CUDA when available, else the CPU.
* :func:`draw_seed` and :func:`seeded`: scikit-learn's ``random_state`` (None, an int or a
  ``numpy.random.RandomState``) becomes one integer seed per fit, and :func:`seeded` runs the
  training with torch's global generators seeded by it *inside* ``torch.random.fork_rng``, so an
  estimator's fit never changes the caller's global random state (dropout and the initializers
  draw from the global generator; the library seeds it only in the runner).
* :func:`to_tensor`, :func:`predict_in_chunks`: NumPy arrays to device tensors and back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch

__all__ = [
    "draw_seed",
    "predict_in_chunks",
    "resolve_device",
    "seeded",
    "to_tensor",
    "torch_dtype",
    "validation_split",
]

#: rows per forward pass at prediction time (bounded memory; results do not depend on it)
CHUNK = 4096


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; any other value -> ``torch.device``.

    Raises:
        ValueError: for a string torch does not parse as a device, naming the parameter.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device={device!r} is invalid: expected 'auto', 'cpu', 'cuda' or 'cuda:N' ({err})"
        ) from None


def draw_seed(random_state: np.random.RandomState) -> int:
    """One integer seed in ``[0, 2^31 - 1)`` drawn from a NumPy ``RandomState``."""
    return int(random_state.randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[torch.Generator]:
    """Run the body with torch's global generators seeded by ``seed`` (restored after).

    Yields a generator on ``device`` seeded by ``seed`` for the functions that take one.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield torch.Generator(device).manual_seed(seed)


def to_tensor(X: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A contiguous NumPy array as a tensor of ``dtype`` on ``device`` (copied, never shared:
    the caller's array is never written)."""
    own = np.array(X, order="C", copy=True)  # writable, ours (X may be a read-only memmap)
    return torch.from_numpy(own).to(device=device, dtype=dtype)


@torch.no_grad()
def predict_in_chunks(
    fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, rows: int = CHUNK
) -> np.ndarray:
    """``fn`` applied to ``X`` in chunks of ``rows`` rows, concatenated, as a float64 array."""
    if X.shape[0] == 0:
        return np.zeros((0,), dtype=np.float64)
    parts = [fn(X[i : i + rows]) for i in range(0, X.shape[0], rows)]
    return torch.cat(parts).double().cpu().numpy()


def validation_split(
    n: int, fraction: float, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_indices, valid_indices)``: ``fraction`` of ``range(n)`` held out, stratified by
    ``labels`` when given and possible (every class with two members or more, and at least one
    held-out example per class), else a plain random split (tiny data sets)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    if labels is not None:
        try:
            return tuple(train_test_split(idx, test_size=fraction, random_state=seed,
                                          stratify=labels))  # fmt: skip
        except ValueError:  # a class too small to stratify
            pass
    return tuple(train_test_split(idx, test_size=fraction, random_state=seed))


def torch_dtype(X: np.ndarray) -> torch.dtype:
    """float32 inputs train in float32, everything else in float64 (as scikit-learn's MLP)."""
    return torch.float32 if X.dtype == np.float32 else torch.float64
