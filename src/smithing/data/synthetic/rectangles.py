"""Tall versus wide rectangle outlines (Larochelle et al., ICML 2007)."""

from __future__ import annotations

from pathlib import Path

import torch

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
    "RECT_MIN_GAP",
    "RECT_MIN_SIDE",
    "load_rectangles",
    "rectangle_images",
]

# ------------------------------------------------------------------------------------------------
# rectangles
# ------------------------------------------------------------------------------------------------

RECT_MIN_SIDE = 2  # shortest side of a rectangle outline, pixels
RECT_MIN_GAP = 3  # |height - width| >= RECT_MIN_GAP: no squares, nor near-squares


def rectangle_images(
    n: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of a rectangle outline: ``x`` (n, 784) in {0, 1}, ``y`` = [height > width].

    Recipe (Larochelle et al. 2007, "discrimination between tall and wide rectangles"; the
    companion page, as we read it): height and width (in pixels, the outline included) are drawn
    uniformly, pairs with ``|height - width| < 3`` rejected so that no rectangle is a square or
    nearly one; then the top-left corner is drawn uniformly among the positions where the whole
    rectangle fits in the 28 x 28 image. Border pixels are 1 (the paper's 255), the rest 0.
    Here sides range over ``2 .. 28`` and the rejection is exact: ``(height, width)`` is drawn
    uniformly from the admissible pairs. ``y = 1`` for tall (height > width), 0 for wide; the
    classes are balanced in expectation by symmetry.
    """
    _check_int("n", n, 0)
    sides = torch.arange(RECT_MIN_SIDE, SIDE + 1)
    hh, ww = torch.meshgrid(sides, sides, indexing="ij")
    ok = (hh - ww).abs() >= RECT_MIN_GAP
    pairs = torch.stack([hh[ok], ww[ok]], dim=1)  # (P, 2) admissible (height, width)
    pick = torch.randint(0, pairs.shape[0], (n,), generator=generator)
    height, width = pairs[pick, 0], pairs[pick, 1]  # (n,), (n,)
    u = torch.rand(n, 2, generator=generator)  # corner ~ U{0, ..., 28 - side}
    top = (u[:, 0] * (SIDE - height + 1)).floor().long()  # (n,)
    left = (u[:, 1] * (SIDE - width + 1)).floor().long()  # (n,)
    bottom, right = top + height - 1, left + width - 1
    r = torch.arange(SIDE).view(1, SIDE, 1)  # row index
    c = torch.arange(SIDE).view(1, 1, SIDE)  # column index
    top, bottom = top.view(-1, 1, 1), bottom.view(-1, 1, 1)
    left, right = left.view(-1, 1, 1), right.view(-1, 1, 1)
    in_rows = (r >= top) & (r <= bottom)  # (n, 28, 1)
    in_cols = (c >= left) & (c <= right)  # (n, 1, 28)
    on_edge = (r == top) | (r == bottom) | (c == left) | (c == right)  # (n, 28, 28)
    outline = in_rows & in_cols & on_edge  # (n, 28, 28)
    x = outline.reshape(n, N_PIXELS).float()  # (n, 784)
    y = (height > width).long()  # (n,) 1 = tall
    return x, y


def load_rectangles(
    data_dir: Path | None = None,
    *,
    n_train: int = 1_000,
    n_valid: int = 200,
    n_test: int = 50_000,
    seed: int = 0,
) -> Dataset:
    """Tall vs wide rectangle outlines (Larochelle et al. 2007), 1000/200/50000 as in the paper."""
    _check_sizes(n_train, n_valid, n_test, seed)
    train, valid, test = _splits(rectangle_images, (n_train, n_valid, n_test), seed)
    return Dataset(
        name="rectangles",
        train=train,
        valid=valid,
        test=test,
        task="classification",
        n_classes=2,
        input_shape=(N_PIXELS,),
        description="rectangle outlines 28x28: tall (1) or wide (0)? (Larochelle et al. 2007)",
        meta={"image_shape": IMAGE_SHAPE, "classes": ("wide", "tall"), "seed": seed},
    )
