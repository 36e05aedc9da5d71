"""StudyResults.first_done: the run a figure draws from; plots.tile's default square grid."""

from __future__ import annotations

import numpy as np

from smithing.experiment import RunRecord, StudyResults
from smithing.plots import tile


def _run(variant, seed, status="done", extra=None):
    return RunRecord(variant, seed, {"seed": seed}, status, {}, [], extra or {}, 1.0)


def test_first_done_is_the_lowest_done_seed_with_the_extra():
    runs = [
        _run("a", 2, extra={"W": [1]}),
        _run("a", 0, status="failed", extra={"W": [1]}),  # not done
        _run("a", 1, extra={}),  # no W
        _run("a", 3, extra={"W": [1]}),
        _run("b", 0, extra={"samples": [1]}),
    ]
    res = StudyResults("s", runs)
    assert res.first_done("a", "W").seed == 2
    assert res.first_done("b", "W") is None
    assert res.first_done("c", "W") is None


def test_tile_defaults_to_a_square_grid():
    imgs = np.random.default_rng(0).normal(size=(10, 4))  # ten 2x2 images: 4 columns, 3 rows
    assert np.array_equal(tile(imgs, (2, 2)), tile(imgs, (2, 2), 4))
    assert tile(imgs, (2, 2)).shape == (3 * 3 + 1, 4 * 3 + 1)
