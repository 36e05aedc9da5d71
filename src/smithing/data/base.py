"""The dataset container and the dataset registry.

A dataset is a set of three splits (train / valid / test) of tensors: inputs ``x`` (float32,
in [0, 1] unless the dataset says otherwise) and targets ``y`` (int64 class labels for
classification, float32 for regression). Datasets live on the training device as whole
tensors; a mini-batch is an index into them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from smithing._registry import Registry

__all__ = [
    "DataUnavailableError",
    "Split",
    "Dataset",
    "DatasetSpec",
    "DATASETS",
    "register_dataset",
    "data_dir",
    "load",
    "names",
]


class DataUnavailableError(RuntimeError):
    """A dataset's files are missing and could not be downloaded (e.g. offline)."""


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # (n, *input_shape)
    y: torch.Tensor  # (n,) labels or (n, *target_shape) regression targets

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"split inputs and targets disagree in length: x {tuple(self.x.shape)} "
                f"vs y {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Dataset:
    """Three splits and what a model needs to know about them."""

    name: str
    train: Split
    valid: Split
    test: Split
    task: str = "classification"  # or "regression"
    n_classes: int = 0  # 0 for regression
    input_shape: tuple[int, ...] = ()
    description: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        n = 1
        for d in self.input_shape:
            n *= d
        return n

    @property
    def n_outputs(self) -> int:
        if self.task == "classification":
            return self.n_classes
        return 1 if self.train.y.dim() == 1 else int(self.train.y[0].numel())

    @property
    def device(self) -> torch.device:
        return self.train.x.device

    def split(self, name: str) -> Split:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split={name!r} is invalid: expected 'train', 'valid' or 'test'")
        return getattr(self, name)

    def to(self, device: torch.device | str) -> Dataset:
        device = torch.device(device)
        if device == self.device:
            return self
        return replace(
            self,
            train=self.train.to(device),
            valid=self.valid.to(device),
            test=self.test.to(device),
        )

    def subset(self, n_train: int | None = None) -> Dataset:
        """The same dataset with only the first ``n_train`` training examples."""
        if n_train is None:
            return self
        if not 0 < n_train <= len(self.train):
            raise ValueError(f"n_train={n_train} is invalid: expected 1..{len(self.train)}")
        tr = Split(self.train.x[:n_train], self.train.y[:n_train])
        return replace(self, train=tr)

    def summary(self) -> str:
        return (
            f"{self.name}: {self.task}, inputs {self.input_shape}, "
            f"{len(self.train)}/{len(self.valid)}/{len(self.test)} train/valid/test"
            + (f", {self.n_classes} classes" if self.n_classes else "")
        )


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: how to build a dataset and what files it needs."""

    name: str
    loader: Callable[..., Dataset]  # loader(data_dir: Path, **kwargs) -> Dataset (on CPU)
    description: str
    files: tuple[str, ...] = ()  # relative paths under the data dir, empty when embedded
    status: Callable[[Path], list[dict]] | None = None  # per-file presence/checksum status


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(
    name: str,
    loader: Callable[..., Dataset],
    description: str,
    files: tuple[str, ...] = (),
    status: Callable[[Path], list[dict]] | None = None,
) -> None:
    DATASETS.register(
        name, DatasetSpec(name, loader, description, files, status), description=description
    )


def data_dir() -> Path:
    """Where dataset files live: ``$SMITHING_DATA_DIR``, else the user's cache directory."""
    env = os.environ.get("SMITHING_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "smithing" / "data"


_CACHE: dict[tuple, Dataset] = {}


def load(
    name: str,
    device: torch.device | str = "cpu",
    *,
    data_dir_: Path | str | None = None,
    cache: bool = True,
    **kwargs,
) -> Dataset:
    """Load dataset ``name`` (see :func:`names`) onto ``device``.

    Extra keyword arguments go to the dataset's loader (e.g. ``seed`` for synthetic sets).
    Loaded CPU copies are cached per process, so repeated loads are free.
    """
    spec = DATASETS.get(name)
    root = Path(data_dir_) if data_dir_ is not None else data_dir()
    key = (name, str(root), tuple(sorted(kwargs.items())))
    ds = _CACHE.get(key) if cache else None
    if ds is None:
        ds = spec.loader(root, **kwargs)
        if cache:
            _CACHE[key] = ds
    return ds.to(device)


def names() -> list[str]:
    """The registered datasets' names. (The built-in ones are registered by the package
    ``smithing.data``, which Python imports before this module whatever the import says.)"""
    return DATASETS.names()
