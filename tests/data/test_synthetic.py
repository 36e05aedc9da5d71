"""Synthetic datasets: the adding problem, rectangles, convex sets, MNIST variations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from smithing.data import DATASETS, load, names
from smithing.data import synthetic as syn

SHARED_DATA = Path("/work/shared/data")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered():
    for name in ("adding", "rectangles", "convex", "mnist-rot", "mnist-back-rand"):
        assert name in names()
        assert DATASETS.entry(name).obj.description


# ------------------------------------------------------------------------------------------------
# adding problem


def test_adding_shapes_markers_and_targets():
    T = 20
    x, y = syn.adding_problem(500, T, gen())
    assert x.shape == (500, T, 2) and x.dtype == torch.float32
    assert y.shape == (500,) and y.dtype == torch.float32
    values, marker = x[..., 0], x[..., 1]
    assert values.min() >= 0 and values.max() < 1
    assert set(marker.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(marker.sum(1), torch.full((500,), 2.0))  # exactly two markers
    assert torch.equal(marker[:, : T // 2].sum(1), torch.ones(500))  # one in each half
    assert torch.equal(marker[:, T // 2 :].sum(1), torch.ones(500))
    expected = (values.double() * marker.double()).sum(1)  # float64 transcription of y
    torch.testing.assert_close(y.double(), expected, rtol=0, atol=1e-6)


def test_adding_odd_length_uses_every_step():
    x, _ = syn.adding_problem(4000, 7, gen())
    marker = x[..., 1]
    assert torch.equal(marker[:, :3].sum(1), torch.ones(4000))  # first half: steps 0..2
    assert marker[:, 6].sum() > 0  # the last step can be marked
    assert marker[:, 3:].sum(0).min() > 0


def test_adding_baseline_mse():
    assert syn.adding_baseline_mse() == pytest.approx(1 / 6)
    _, y = syn.adding_problem(20_000, 10, gen(3))
    mse = ((y.double() - 1.0) ** 2).mean().item()  # predict the mean target, 1
    assert mse == pytest.approx(1 / 6, abs=0.006)  # ~4 standard errors


def test_adding_dataset_and_determinism():
    ds = load("adding", T=12, n_train=64, n_valid=16, n_test=8, seed=1, cache=False)
    assert ds.task == "regression" and ds.input_shape == (12, 2) and ds.n_outputs == 1
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (64, 16, 8)
    assert ds.meta["baseline_mse"] == pytest.approx(1 / 6)
    again = load("adding", T=12, n_train=64, n_valid=16, n_test=8, seed=1, cache=False)
    other = load("adding", T=12, n_train=64, n_valid=16, n_test=8, seed=2, cache=False)
    for split in ("train", "valid", "test"):
        assert torch.equal(ds.split(split).x, again.split(split).x)
        assert torch.equal(ds.split(split).y, again.split(split).y)
        assert not torch.equal(ds.split(split).x, other.split(split).x)
    # the held-out splits do not depend on n_train
    bigger = load("adding", T=12, n_train=128, n_valid=16, n_test=8, seed=1, cache=False)
    assert torch.equal(bigger.test.x, ds.test.x) and torch.equal(bigger.valid.y, ds.valid.y)


def test_adding_errors():
    with pytest.raises(ValueError, match="T=1 is invalid: expected an integer >= 2"):
        syn.adding_problem(4, 1)
    with pytest.raises(ValueError, match="n_train=0 is invalid"):
        load("adding", n_train=0, cache=False)
    with pytest.raises(ValueError, match="seed=-1 is invalid"):
        load("adding", seed=-1, cache=False)


# ------------------------------------------------------------------------------------------------
# rectangles


def test_rectangles_labels_match_geometry():
    x, y = syn.rectangle_images(300, gen())
    assert x.shape == (300, 784) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert set(x.unique().tolist()) == {0.0, 1.0}
    for img, label in zip(x.view(-1, 28, 28), y):
        rows = img.any(1).nonzero().squeeze(1)
        cols = img.any(0).nonzero().squeeze(1)
        top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
        height, width = int(bottom - top + 1), int(right - left + 1)
        outline = torch.zeros(28, 28)
        outline[top : bottom + 1, left : right + 1] = 1
        outline[top + 1 : bottom, left + 1 : right] = 0  # hollow
        assert torch.equal(img, outline)  # exactly the outline of its bounding box
        assert abs(height - width) >= syn.RECT_MIN_GAP  # no (near-)squares
        assert int(label) == int(height > width)


def test_rectangles_balance_and_determinism():
    _, y = syn.rectangle_images(4000, gen(1))
    assert abs(y.float().mean().item() - 0.5) < 0.04
    a = load("rectangles", n_train=20, n_valid=5, n_test=30, seed=3, cache=False)
    b = load("rectangles", n_train=20, n_valid=5, n_test=30, seed=3, cache=False)
    c = load("rectangles", n_train=20, n_valid=5, n_test=30, seed=4, cache=False)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)
    assert a.n_classes == 2 and a.input_shape == (784,) and a.meta["image_shape"] == (28, 28)


# ------------------------------------------------------------------------------------------------
# convex sets: an independent oracle with scipy's Qhull


def lattice_hull(points: np.ndarray) -> set[tuple[int, int]]:
    """The integer points of the convex hull of ``points`` (k, 2), by brute force."""
    from scipy.spatial import ConvexHull, QhullError

    grid = np.stack(np.meshgrid(np.arange(28), np.arange(28), indexing="ij"), -1).reshape(-1, 2)
    if len(points) == 1:
        return {tuple(points[0])}
    try:
        hull = ConvexHull(points)
        inside = (grid @ hull.equations[:, :2].T + hull.equations[:, 2] <= 1e-9).all(1)
    except QhullError:  # collinear: the hull is the segment between the extreme points
        d = points - points[0]
        direction = d[np.abs(d).sum(1).argmax()]
        rel = grid - points[0]
        on_line = rel[:, 0] * direction[1] - rel[:, 1] * direction[0] == 0
        proj = rel @ direction
        along = points @ direction - points[0] @ direction
        inside = on_line & (proj >= along.min()) & (proj <= along.max())
    return {tuple(p) for p in grid[inside]}


def oracle_convex(img: torch.Tensor) -> bool:
    points = img.nonzero().numpy()  # (k, 2) (row, col)
    if len(points) == 0:
        return True
    return lattice_hull(points) == {tuple(p) for p in points}


def test_is_digitally_convex_hand_made():
    def image(*pixels):
        img = torch.zeros(28, 28, dtype=torch.bool)
        for r, c in pixels:
            img[r, c] = True
        return img

    square = torch.zeros(28, 28, dtype=torch.bool)
    square[3:9, 4:12] = True
    ell = square.clone()
    ell[3:6, 8:12] = False  # an L: every row and column an interval, yet not convex
    ring = square.clone()
    ring[5:7, 6:9] = False
    cases = {
        "square": (square, True),
        "L": (ell, False),
        "ring": (ring, False),
        "empty": (torch.zeros(28, 28, dtype=torch.bool), True),
        "pixel": (image((5, 5)), True),
        "diagonal": (image((0, 0), (1, 1), (2, 2)), True),
        "knight": (image((0, 0), (1, 2)), True),  # no lattice point between them
        "gap": (image((0, 0), (0, 2)), False),
        "gap-diagonal": (image((0, 0), (2, 2)), False),  # misses (1, 1)
    }
    imgs = torch.stack([v[0] for v in cases.values()])
    got = syn.is_digitally_convex(imgs)
    for (name, (img, want)), g in zip(cases.items(), got):
        assert bool(g) == want, name
        assert oracle_convex(img) == want, name


def test_is_digitally_convex_matches_qhull_oracle():
    g = gen(5)
    pieces = syn.halfplane_regions(240, 0.15, 0, g)  # (240, 28, 28) convex
    unions = pieces[:120] | pieces[120:]  # often not convex
    noise = torch.rand(20, 28, 28, generator=g) > 0.97
    imgs = torch.cat([pieces[:60], unions, noise])
    got = syn.is_digitally_convex(imgs)
    want = torch.tensor([oracle_convex(img) for img in imgs])
    assert torch.equal(got, want)
    assert got[:60].all() and 10 < (~got).sum() < len(imgs)
    with pytest.raises(ValueError, match=r"images must be \(n, H, W\), got shape \(28, 28\)"):
        syn.is_digitally_convex(imgs[0])


def test_halfplane_regions_shrink_with_more_halfplanes():
    few = syn.halfplane_regions(2000, 0.5, 0, gen(1)).flatten(1).sum(1).float().mean()
    many = syn.halfplane_regions(2000, 0.05, 0, gen(1)).flatten(1).sum(1).float().mean()
    assert many < 0.6 * few
    with pytest.raises(ValueError, match="p=0 is invalid"):
        syn.halfplane_regions(3, 0)


def test_convex_labels_by_independent_check():
    x, y = syn.convex_images(151, gen(2))
    assert x.shape == (151, 784) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert int(y.sum()) == 76  # ceil(151 / 2) convex
    imgs = x.view(-1, 28, 28).bool()
    for img, label in zip(imgs, y):
        assert oracle_convex(img) == bool(label)
    counts = imgs.flatten(1).sum(1)
    assert counts[y == 1].min() >= syn.CONVEX_MIN_PIXELS


def test_convex_pixel_counts_balanced():
    # the paper balances the mean number of white pixels of the two classes (no counting cue)
    x, y = syn.convex_images(1200, gen(0))
    counts = x.sum(1)
    convex, nonconvex = counts[y == 1].mean().item(), counts[y == 0].mean().item()
    assert abs(convex - nonconvex) < 0.12 * convex


def test_convex_dataset_determinism():
    kw = dict(n_train=30, n_valid=10, n_test=10, cache=False)
    a = load("convex", seed=0, **kw)
    b = load("convex", seed=0, **kw)
    c = load("convex", seed=1, **kw)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.valid.y, b.valid.y)
    assert not torch.equal(a.train.x, c.train.x)
    assert a.n_classes == 2 and a.meta["image_shape"] == (28, 28)
    assert a.train.y.float().mean().item() == 0.5  # exact balance per split


# ------------------------------------------------------------------------------------------------
# MNIST variations: pure transforms, then the datasets (need the MNIST files)


def test_rotate_images():
    x = torch.rand(5, 28, 28, generator=gen())
    torch.testing.assert_close(rotate(x, 0.0), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        rotate(x, math.pi / 2), torch.rot90(x, 1, (-2, -1)), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(rotate(x, math.pi), torch.rot90(x, 2, (-2, -1)), atol=1e-5, rtol=0)
    # a centred blob keeps its mass under any rotation (bilinear interpolation)
    r = torch.arange(28.0) - 13.5
    blob = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / 20.0).expand(4, 28, 28)
    angles = torch.tensor([0.3, 1.0, 2.5, 4.0])
    rotated = syn.rotate_images(blob.contiguous(), angles)
    torch.testing.assert_close(rotated.sum((1, 2)), blob.sum((1, 2)), rtol=1e-2, atol=0)
    with pytest.raises(ValueError, match=r"angles must be \(4,\)"):
        syn.rotate_images(blob.contiguous(), torch.zeros(3))


def rotate(x: torch.Tensor, angle: float) -> torch.Tensor:
    return syn.rotate_images(x, torch.full((x.shape[0],), angle))


def test_random_background_modes():
    digit = torch.zeros(200, 28, 28)
    digit[:, 10:18, 12:16] = torch.linspace(0.1, 1.0, 4)  # strokes with grey edges
    rep = syn.random_background(digit, gen(), "replace")
    mx = syn.random_background(digit, gen(), "max")
    stroke = digit > 0
    assert torch.equal(rep[stroke], digit[stroke])  # digit kept
    back = rep[~stroke]
    assert back.min() >= 0 and back.max() < 1 and abs(back.mean().item() - 0.5) < 0.01
    assert (mx >= digit).all() and torch.equal(mx[~stroke], rep[~stroke])  # same noise
    with pytest.raises(ValueError, match="mode='add' is invalid"):
        syn.random_background(digit, mode="add")


needs_mnist = pytest.mark.skipif(
    not (SHARED_DATA / "mnist").is_dir() or "mnist" not in DATASETS,
    reason="needs the MNIST files in /work/shared/data",
)


@pytest.fixture
def shared_data(monkeypatch):
    monkeypatch.setenv("SMITHING_DATA_DIR", str(SHARED_DATA))


@needs_mnist
@pytest.mark.parametrize("name", ["mnist-rot", "mnist-back-rand"])
def test_mnist_variants(shared_data, name):
    kw = dict(n_train=40, n_valid=10, n_test=20, cache=False)
    ds = load(name, seed=0, **kw)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (40, 10, 20)
    assert ds.n_classes == 10 and ds.input_shape == (784,) and ds.meta["image_shape"] == (28, 28)
    for split in ("train", "valid", "test"):
        s = ds.split(split)
        assert s.x.dtype == torch.float32 and s.y.dtype == torch.int64
        assert s.x.min() >= 0 and s.x.max() <= 1
        assert s.y.min() >= 0 and s.y.max() <= 9
    again = load(name, seed=0, **kw)
    other = load(name, seed=1, **kw)
    assert torch.equal(ds.train.x, again.train.x) and torch.equal(ds.test.y, again.test.y)
    assert not torch.equal(ds.train.x, other.train.x)
    if name == "mnist-back-rand":
        assert (ds.train.x > 0).float().mean() > 0.99  # no black background left
    else:
        assert (ds.train.x == 0).float().mean() > 0.5  # black background kept
    # the held-out digits do not depend on n_train
    bigger = load(name, seed=0, n_train=80, n_valid=10, n_test=20, cache=False)
    assert torch.equal(bigger.test.x, ds.test.x)


@needs_mnist
def test_mnist_variant_size_limit(shared_data):
    with pytest.raises(ValueError, match=r"n_train \+ n_valid \+ n_test=70001 is invalid"):
        load("mnist-rot", n_train=60_001, n_valid=0, n_test=10_000, cache=False)
