"""Datasets by name: ``smithing.data.load("digits")``.

Built in: ``digits`` (embedded), ``mnist``, ``fashion-mnist`` and their ``binarized`` /
``standardized`` views (downloaded to :func:`data_dir` with checksums), and synthetic sets made
deterministically from a seed (adding problem, rectangles, convex, MNIST variants).
"""

from smithing.data import digits as _digits  # noqa: F401  (registers "digits")
from smithing.data import mnist as _mnist  # noqa: F401
from smithing.data import synthetic as _synthetic  # noqa: F401
from smithing.data.base import (
    DATASETS,
    Dataset,
    DataUnavailableError,
    Split,
    data_dir,
    load,
    names,
    register_dataset,
)

__all__ = [
    "DATASETS",
    "DataUnavailableError",
    "Dataset",
    "Split",
    "data_dir",
    "load",
    "names",
    "register_dataset",
]
