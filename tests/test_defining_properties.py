"""Defining properties of initializers not pinned elsewhere, each checked so that breaking it
fails.

Each test's docstring names the one-line source mutation it was verified to catch.
"""

from __future__ import annotations

import torch

from smithing import init

D = torch.float64


def test_sparse_init_nonzeros_have_variance_sigma_squared():
    """Sparse init (Martens 2010): exactly k non-zero incoming weights per unit, each
    N(0, sigma^2); here the variance of the non-zeros is sigma^2 = 0.09, not 1.

    Catches: ``torch.randn(...) * sigma`` -> ``torch.randn(...)`` in ``_sparse`` (sigma
    ignored).
    """
    w = torch.empty(200, 100, dtype=D)
    init.initialize(w, "sparse", generator=torch.Generator().manual_seed(0), k=15, sigma=0.3)
    nz = w[w != 0]
    assert ((w != 0).sum(1) == 15).all()
    assert abs(nz.var().item() / 0.09 - 1) < 0.1
    assert abs(nz.mean().item()) < 4 * 0.3 / nz.numel() ** 0.5
