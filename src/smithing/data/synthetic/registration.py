"""The synthetic datasets' entries in the dataset registry."""

from __future__ import annotations

import functools

from smithing.data import mnist as _mnist_files
from smithing.data.base import register_dataset
from smithing.data.synthetic.adding import (
    load_adding,
)
from smithing.data.synthetic.convex import (
    load_convex,
)
from smithing.data.synthetic.mnist_variants import (
    load_mnist_back_rand,
    load_mnist_rot,
)
from smithing.data.synthetic.rectangles import (
    load_rectangles,
)

__all__ = []

# ------------------------------------------------------------------------------------------------
# registration
# ------------------------------------------------------------------------------------------------

register_dataset(
    "adding",
    load_adding,
    "adding problem (Hochreiter & Schmidhuber 1997): sum of two marked values; T=50 (synthetic)",
)
register_dataset(
    "rectangles",
    load_rectangles,
    "tall vs wide rectangle outlines 28x28, 1000/200/50000 (Larochelle et al. 2007, synthetic)",
)
register_dataset(
    "convex",
    load_convex,
    "convex vs non-convex regions 28x28, 6000/2000/50000 (Larochelle et al. 2007, synthetic)",
)
_MNIST_FILES = tuple(rf.relpath for rf in _mnist_files.remote_files("mnist").values())
register_dataset(
    "mnist-rot",
    load_mnist_rot,
    "MNIST rotated by U[0, 2pi), 10000/2000/50000 (Larochelle et al. 2007; needs mnist)",
    files=_MNIST_FILES,
    status=functools.partial(_mnist_files.status, "mnist"),
)
register_dataset(
    "mnist-back-rand",
    load_mnist_back_rand,
    "MNIST on uniform-noise background, 10000/2000/50000 (Larochelle et al. 2007; needs mnist)",
    files=_MNIST_FILES,
    status=functools.partial(_mnist_files.status, "mnist"),
)
