"""Convex versus non-convex white regions (Larochelle et al., ICML 2007)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import torch

from smithing._registry import check
from smithing.data.base import Dataset
from smithing.data.synthetic.common import (
    IMAGE_SHAPE,
    N_PIXELS,
    SIDE,
    _check_int,
    _check_sizes,
    _splits,
)

__all__ = [
    "CONVEX_MIN_PIXELS",
    "CONVEX_P",
    "NONCONVEX_MIN_PIXELS",
    "NONCONVEX_P",
    "NONCONVEX_PIECES",
    "convex_images",
    "halfplane_regions",
    "is_digitally_convex",
    "load_convex",
]

# ------------------------------------------------------------------------------------------------
# convex sets
# ------------------------------------------------------------------------------------------------

CONVEX_P = 0.195  # Geometric parameter of the number of half-planes of a convex image (paper)
CONVEX_MIN_PIXELS = 19  # a convex image has at least 19 white pixels (paper)
NONCONVEX_P = 0.03  # ... of each convex piece of a non-convex image (paper: 0.07, see below)
NONCONVEX_MIN_PIXELS = 10  # each piece has at least 10 white pixels (paper)
NONCONVEX_PIECES = (2, 4)  # number of pieces ~ U{2, 3, 4} (paper)


def _pixel_centres() -> torch.Tensor:
    """Pixel (row r, column c) has centre (x = c, y = r): (784, 2) float64, row-major."""
    a = torch.arange(SIDE, dtype=torch.float64)
    return torch.stack([a.repeat(SIDE), a.repeat_interleave(SIDE)], dim=1)


_LINES_PER_STEP = 8  # half-planes applied per vectorized step of halfplane_regions


def halfplane_regions(
    n: int, p: float, min_pixels: int = 0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``n`` candidate convex regions, (n, 28, 28) bool: intersections of random half-planes.

    Each region draws ``K ~ Geometric(p)`` on {1, 2, ...} half-planes and an anchor point ``a``
    uniform on the image square [-0.5, 27.5]^2. Each half-plane's boundary line passes through
    a point ``q`` uniform on the same square with a normal at an angle ``theta ~ U[0, 2 pi)``
    ("location and orientation chosen uniformly at random", Larochelle et al. 2007); the side
    kept is the one holding ``a``, so the region is never empty as a set of the plane and shrinks
    as ``K`` grows. A pixel is white when its centre ``z`` lies in every half-plane:
    ``(z - q) . u >= 0`` with ``u = +-(cos theta, sin theta)`` pointing towards ``a``.
    Departure: the paper does not say which side is kept; a random side makes most
    intersections of several half-planes empty, and then ``p`` hardly changes the sizes.

    Refinement stops early for a region once it has fewer than ``min_pixels`` white pixels (it
    will be rejected); such regions are returned unfinished, so filter on the pixel count.
    Half-planes are applied 8 at a time, and only the lines that cut a region's bounding box
    touch its pixels.
    """
    _check_int("n", n, 0)
    check(0.0 < p <= 1.0, "p", p, "a probability in (0, 1]")
    pix = _pixel_centres().T.contiguous()  # (2, 784) pixel centres (x, y)
    count = torch.empty(n, dtype=torch.float64).geometric_(p, generator=generator).long()  # K
    anchor = torch.rand(n, 2, generator=generator, dtype=torch.float64) * SIDE - 0.5  # (n, 2)
    region = torch.ones(n, N_PIXELS, dtype=torch.bool)  # (n, 784)
    rows = torch.arange(n)  # regions still being refined
    npix = torch.full((n,), N_PIXELS)  # their pixel counts
    box = torch.tensor([0.0, 0.0, SIDE - 1.0, SIDE - 1.0], dtype=torch.float64).repeat(n, 1)
    k = 0  # half-planes applied so far
    while True:
        keep = (count[rows] > k) & (npix >= max(min_pixels, 1))
        rows, npix, box = rows[keep], npix[keep], box[keep]
        m = rows.numel()
        if m == 0:
            break
        # the next _LINES_PER_STEP half-planes of every region at once (fewer, larger ops)
        draw = torch.rand(m, _LINES_PER_STEP, 3, generator=generator, dtype=torch.float64)
        q = draw[..., :2] * SIDE - 0.5  # (m, L, 2) a point of each line
        theta = draw[..., 2] * (2.0 * math.pi)  # (m, L)
        u = torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)  # (m, L, 2) unit normals
        side = torch.where(((anchor[rows, None] - q) * u).sum(dim=-1) >= 0, 1.0, -1.0)
        u = u * side[..., None]  # normals towards the anchor
        c = (q * u).sum(dim=-1)  # (m, L) keep the pixels z with z . u >= q . u
        used = torch.arange(_LINES_PER_STEP) < (count[rows] - k)[:, None]  # (m, L) still due
        # a line cuts the region only if it cuts its bounding box (xmin, ymin, xmax, ymax):
        # test the box corner lowest along u; only cutting lines touch pixels
        low_x = torch.where(u[..., 0] >= 0, box[:, None, 0], box[:, None, 2])  # (m, L)
        low_y = torch.where(u[..., 1] >= 0, box[:, None, 1], box[:, None, 3])
        cut = used & (low_x * u[..., 0] + low_y * u[..., 1] < c)  # (m, L)
        pair_row, pair_line = cut.nonzero(as_tuple=True)  # (P,) each, sorted by row
        k += _LINES_PER_STEP
        if pair_row.numel() == 0:
            continue
        hit, owner = torch.unique_consecutive(pair_row, return_inverse=True)  # (h,), (P,)
        up = u[pair_row, pair_line]  # (P, 2)
        along = up[:, :1] * pix[0]  # (P, 784) z . u, elementwise (a K=2 matmul is slower)
        along.addcmul_(up[:, 1:], pix[1])
        off = (along < c[pair_row, pair_line, None]).view(torch.uint8)  # (P, 784) cut away
        removed = torch.zeros(hit.numel(), N_PIXELS, dtype=torch.uint8).index_add_(0, owner, off)
        removed = removed > 0  # (h, 784) cut away by some line (at most L per pixel: no overflow)
        r = rows[hit]
        new = region[r] & ~removed  # (h, 784) (z - q) . u >= 0 for every line
        region[r] = new
        u8 = new.view(torch.uint8).view(-1, SIDE, SIDE)  # (h, 28, 28), bool as bytes
        row_n = u8.sum(dim=2, dtype=torch.uint8)  # (h, 28) pixels per row (<= 28)
        col_any = u8.amax(dim=1)  # (h, 28) column not empty
        npix[hit] = row_n.sum(dim=1, dtype=torch.int64)
        row_any = (row_n > 0).to(torch.uint8)
        last = SIDE - 1
        box[hit] = torch.stack(
            [
                col_any.argmax(dim=1),  # argmax: the first maximal index
                row_any.argmax(dim=1),
                last - col_any.flip(1).argmax(dim=1),
                last - row_any.flip(1).argmax(dim=1),
            ],
            dim=1,
        ).to(box.dtype)
    return region.view(n, SIDE, SIDE)


def _accepted_regions(
    n: int, p: float, min_pixels: int, generator: torch.Generator | None
) -> torch.Tensor:
    """``n`` regions of :func:`halfplane_regions` with >= ``min_pixels`` pixels (rejection)."""
    parts, have = [], 0
    while have < n:
        m = min(8192, max(256, int(1.25 * (n - have)) + 16))  # candidates this round
        cand = halfplane_regions(m, p, min_pixels, generator)  # (m, 28, 28)
        ok = cand.flatten(1).sum(dim=1) >= min_pixels
        parts.append(cand[ok])
        have += int(ok.sum())
    return torch.cat(parts)[:n] if parts else torch.zeros(0, SIDE, SIDE, dtype=torch.bool)


def _row_extents(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """First and last white column and white count of each row of (n, h, w) bool: (n, h) each.

    Empty rows have first = 0, last = w - 1 - 0 and count 0; read them through the count.
    """
    u8 = img.contiguous().view(torch.uint8)  # (n, h, w) bool as bytes
    w = img.shape[2]
    first = u8.argmax(dim=2)  # argmax: the first maximal index
    last = w - 1 - u8.flip(2).argmax(dim=2)
    count = u8.sum(dim=2, dtype=torch.int64)
    return first, last, count


@functools.cache
def _row_triples(h: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All row triples a <= r <= b of an h-row image, as three (P,) int64 tensors."""
    i = torch.arange(h)
    a, r, b = torch.meshgrid(i, i, i, indexing="ij")
    ok = (a <= r) & (r <= b)
    return a[ok], r[ok], b[ok]


def is_digitally_convex(images: torch.Tensor) -> torch.Tensor:
    """Whether each binary image (n, H, W) equals the lattice points of its convex hull, (n,).

    A pixel set ``S`` is digitally convex when ``S = conv(S) ∩ Z^2`` (Kim & Rosenfeld, "Digital
    straight lines and convexity of digital regions", IEEE PAMI 4(2), 1982). Every rasterized
    intersection of half-planes passes; a set fails when a lattice point of its hull is black.
    The empty set passes. Method: the hull's right boundary at row ``r`` is the largest value,
    over pairs of non-empty rows ``a <= r <= b``, of the segment from the rightmost pixel of row
    ``a`` to that of row ``b``, at height ``r`` (likewise the left boundary with leftmost
    pixels); the hull's lattice points on row ``r`` are the integers between the two.
    """
    if images.dim() != 3:
        raise ValueError(f"images must be (n, H, W), got shape {tuple(images.shape)}")
    img = images.bool()
    n, h, w = img.shape
    if n == 0:
        return torch.ones(0, dtype=torch.bool)
    a, r, b = _row_triples(h)  # (P,) each: every a <= r <= b
    t = torch.where(b > a, (r - a) / (b - a).clamp(min=1), 0.0).float()  # (P,) height of r
    col = torch.arange(w, dtype=torch.float32)
    big = 4.0 * (h + w) ** 2  # empty rows: their segments land far outside the image
    out = torch.zeros(n, dtype=torch.bool)
    left, right, row_n = _row_extents(img)  # (n, h) each
    col_l, col_r, col_n = _row_extents(img.transpose(1, 2))  # (n, w) each
    # a digitally convex set meets every row and every column in an interval: a cheap
    # necessary condition that settles most non-convex sets without the hull
    rows_ok = ((right - left + 1 == row_n) | (row_n == 0)).all(dim=1)
    cols_ok = ((col_r - col_l + 1 == col_n) | (col_n == 0)).all(dim=1)
    todo = (rows_ok & cols_ok).nonzero().squeeze(1)
    for idx in todo.split(4096):
        m = idx.numel()
        blk = img[idx]  # (m, h, w)
        has = row_n[idx] > 0
        rgt = torch.where(has, right[idx].float(), -big)  # (m, h) rightmost pixel per row
        lft = torch.where(has, left[idx].float(), big)  # (m, h) leftmost pixel per row
        seg_r = rgt[:, a] + (rgt[:, b] - rgt[:, a]) * t  # (m, P) segment at height r
        seg_l = lft[:, a] + (lft[:, b] - lft[:, a]) * t  # (m, P)
        at = r.expand(m, -1)
        hull_r = torch.full((m, h), -big).scatter_reduce_(1, at, seg_r, "amax")  # (m, h)
        hull_l = torch.full((m, h), big).scatter_reduce_(1, at, seg_l, "amin")  # (m, h)
        # boundary values are multiples of 1 / (b - a) <= 1/27 apart from integers: a small
        # slack absorbs float32 rounding without admitting a wrong lattice point
        lo = torch.ceil(hull_l - 1e-4)[:, :, None]
        hi = torch.floor(hull_r + 1e-4)[:, :, None]
        hull = (col >= lo) & (col <= hi)  # (m, h, w) lattice points of the hull
        out[idx] = (hull == blk).all(dim=(1, 2))
    return out


def convex_images(
    n: int,
    generator: torch.Generator | None = None,
    *,
    p_convex: float = CONVEX_P,
    p_nonconvex: float = NONCONVEX_P,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of a white region, ``x`` (n, 784) in {0, 1}, ``y`` = 1 if it is convex.

    Recipe (Larochelle et al. 2007, companion page, "recognition of convex sets"):

    - convex: the intersection of ``K ~ Geometric(p_convex = 0.195)`` random half-planes
      (:func:`halfplane_regions`), rejected when it has fewer than 19 white pixels;
    - non-convex: the union of ``M ~ U{2, 3, 4}`` convex pieces, each built as above with
      ``K ~ Geometric(p_nonconvex)`` and at least 10 white pixels, kept only when the union is
      not convex (:func:`is_digitally_convex`; the paper checks "a convexity condition for
      every pair of pixels").

    Exactly ``ceil(n / 2)`` convex and ``floor(n / 2)`` non-convex images, shuffled.

    Departure: the paper says its parameters were chosen so that both classes have the same
    mean number of white pixels (so that the count is no cue), with ``p_nonconvex = 0.07``.
    With our half-planes that value gives non-convex images about 350 white pixels on average
    against about 275 for convex ones; ``p_nonconvex = 0.03`` (the default) restores the
    balance (about 280 vs 275). Pass ``p_nonconvex=0.07`` for the paper's literal value.
    """
    _check_int("n", n, 0)
    check(0.0 < p_convex <= 1.0, "p_convex", p_convex, "a probability in (0, 1]")
    check(0.0 < p_nonconvex <= 1.0, "p_nonconvex", p_nonconvex, "a probability in (0, 1]")
    n_convex = (n + 1) // 2
    n_nonconvex = n - n_convex
    convex = _accepted_regions(n_convex, p_convex, CONVEX_MIN_PIXELS, generator)
    parts, have = [], 0
    lo, hi = NONCONVEX_PIECES
    while have < n_nonconvex:
        m = min(4096, max(128, int(1.25 * (n_nonconvex - have)) + 16))  # candidate unions
        pieces = torch.randint(lo, hi + 1, (m,), generator=generator)  # (m,) M ~ U{2, 3, 4}
        comps = _accepted_regions(int(pieces.sum()), p_nonconvex, NONCONVEX_MIN_PIXELS, generator)
        owner = torch.repeat_interleave(torch.arange(m), pieces)  # (sum M,) union of each piece
        hits = torch.zeros(m, N_PIXELS).index_add_(0, owner, comps.flatten(1).float())
        union = (hits > 0).view(m, SIDE, SIDE)  # (m, 28, 28) union of the pieces
        keep = ~is_digitally_convex(union)
        parts.append(union[keep])
        have += int(keep.sum())
    nonconvex = torch.cat(parts)[:n_nonconvex] if parts else convex[:0]
    x = torch.cat([convex, nonconvex]).reshape(n, N_PIXELS).float()  # (n, 784)
    y = torch.cat([torch.ones(n_convex), torch.zeros(n_nonconvex)]).long()  # (n,)
    perm = torch.randperm(n, generator=generator)
    return x[perm], y[perm]


def load_convex(
    data_dir: Path | None = None,
    *,
    n_train: int = 6_000,
    n_valid: int = 2_000,
    n_test: int = 50_000,
    seed: int = 0,
    p_nonconvex: float = NONCONVEX_P,
) -> Dataset:
    """Convex vs non-convex white regions (Larochelle et al. 2007), 6000/2000/50000 as in the
    paper (see :func:`convex_images` for the recipe and the one departure)."""
    _check_sizes(n_train, n_valid, n_test, seed)
    make = functools.partial(convex_images, p_nonconvex=p_nonconvex)
    train, valid, test = _splits(lambda n, g: make(n, g), (n_train, n_valid, n_test), seed)
    return Dataset(
        name="convex",
        train=train,
        valid=valid,
        test=test,
        task="classification",
        n_classes=2,
        input_shape=(N_PIXELS,),
        description="white regions 28x28: convex (1) or not (0)? (Larochelle et al. 2007)",
        meta={
            "image_shape": IMAGE_SHAPE,
            "classes": ("non-convex", "convex"),
            "seed": seed,
            "p_nonconvex": p_nonconvex,
        },
    )
