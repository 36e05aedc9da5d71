"""scikit-learn's bundled 8x8 handwritten digits: the embedded default dataset.

1797 images of 8x8 pixels with 17 grey levels (UCI ML hand-written digits, Alpaydin & Kaynak
1998), scaled to [0, 1] by dividing by 16. No download is needed. The split is a fixed
permutation (seed 0): 1197 train / 300 valid / 300 test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from smithing._optional import require
from smithing.data.base import Dataset, Split, register_dataset

__all__ = ["load_digits"]

N_TRAIN, N_VALID, N_TEST = 1197, 300, 300


def load_digits(data_dir: Path | None = None) -> Dataset:
    bunch = require("sklearn.datasets", "the digits dataset").load_digits()
    x = torch.from_numpy(bunch.data.astype(np.float32) / 16.0)  # (1797, 64) in [0, 1]
    y = torch.from_numpy(bunch.target.astype(np.int64))  # (1797,)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    a, b = N_TRAIN, N_TRAIN + N_VALID
    return Dataset(
        name="digits",
        train=Split(x[:a], y[:a]),
        valid=Split(x[a:b], y[a:b]),
        test=Split(x[b:], y[b:]),
        task="classification",
        n_classes=10,
        input_shape=(64,),
        description="8x8 handwritten digits bundled with scikit-learn (embedded, no download)",
        meta={"image_shape": (8, 8)},
    )


register_dataset(
    "digits", load_digits, "8x8 handwritten digits bundled with scikit-learn (embedded)"
)
