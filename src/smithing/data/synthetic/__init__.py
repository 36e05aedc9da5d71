"""Synthetic datasets made deterministically from a seed.

- ``adding``: the adding problem for recurrent nets (Hochreiter & Schmidhuber, "Long short-term
  memory", Neural Computation 9(8), 1997; in the form of Le, Jaitly & Hinton, "A simple way to
  initialize recurrent networks of rectified linear units", arXiv:1504.00941, 2015).
- ``rectangles``, ``convex``, ``mnist-rot``, ``mnist-back-rand``: four benchmarks of Larochelle,
  Erhan, Courville, Bergstra & Bengio, "An empirical evaluation of deep architectures on problems
  with many factors of variation", ICML 2007 (recipes from the paper and its online companion).

Every loader takes ``n_train``, ``n_valid``, ``n_test`` and ``seed``. Each split is drawn from its
own generator, seeded from ``(seed, split)``, so the valid and test sets do not change when only
``n_train`` does (a quick run on a small training set is scored on the same test set as the full
one). Same seed, same tensors (bitwise, on CPU); the data is built on CPU and cached by
:func:`smithing.data.load`.

The generators are vectorized tensor code (no per-example Python loop); the default
``convex`` set (58,000 images) takes the longest, tens of seconds on one CPU core.
"""

from __future__ import annotations

from smithing.data.synthetic import registration as _registration  # noqa: F401 (registers)
from smithing.data.synthetic.adding import (
    adding_baseline_mse,
    adding_problem,
    load_adding,
)
from smithing.data.synthetic.common import (
    IMAGE_SHAPE,
    N_PIXELS,
    SIDE,
)
from smithing.data.synthetic.convex import (
    CONVEX_MIN_PIXELS,
    CONVEX_P,
    NONCONVEX_MIN_PIXELS,
    NONCONVEX_P,
    NONCONVEX_PIECES,
    convex_images,
    halfplane_regions,
    is_digitally_convex,
    load_convex,
)
from smithing.data.synthetic.mnist_variants import (
    BACKGROUND_MODES,
    load_mnist_back_rand,
    load_mnist_rot,
    random_background,
    rotate_images,
)
from smithing.data.synthetic.rectangles import (
    RECT_MIN_GAP,
    RECT_MIN_SIDE,
    load_rectangles,
    rectangle_images,
)

__all__ = [
    "SIDE",
    "N_PIXELS",
    "IMAGE_SHAPE",
    "adding_problem",
    "adding_baseline_mse",
    "load_adding",
    "RECT_MIN_SIDE",
    "RECT_MIN_GAP",
    "rectangle_images",
    "load_rectangles",
    "CONVEX_P",
    "CONVEX_MIN_PIXELS",
    "NONCONVEX_P",
    "NONCONVEX_MIN_PIXELS",
    "NONCONVEX_PIECES",
    "halfplane_regions",
    "is_digitally_convex",
    "convex_images",
    "load_convex",
    "BACKGROUND_MODES",
    "rotate_images",
    "random_background",
    "load_mnist_rot",
    "load_mnist_back_rand",
]
