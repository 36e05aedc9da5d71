"""Figures of an RBM: :func:`filters_figure`."""

from __future__ import annotations

import math
from pathlib import Path

from smithing._optional import require
from smithing._registry import check
from smithing.pretrain.rbm.modules import (
    BernoulliRBM,
)

__all__ = [
    "filters_figure",
]

# ------------------------------------------------------------------ figures


def filters_figure(
    rbm: BernoulliRBM,
    image_shape: tuple[int, int],
    path: str | Path,
    *,
    n_filters: int = 100,
    member: int = 0,
    title: str | None = None,
) -> Path:
    """Save the first ``n_filters`` hidden units' incoming weights ``W[:, j]`` as an image grid.

    Each filter is scaled to its own ``[-max|w|, max|w|]`` (grey = 0). Uses matplotlib's
    object API with the Agg canvas (no pyplot, no global backend change).
    """
    FigureCanvasAgg = require(
        "matplotlib.backends.backend_agg", "RBM filter figures"
    ).FigureCanvasAgg
    Figure = require("matplotlib.figure", "RBM filter figures").Figure
    check(
        len(image_shape) == 2 and image_shape[0] * image_shape[1] == rbm.n_visible,
        "image_shape",
        image_shape,
        f"(rows, cols) with rows * cols = {rbm.n_visible}",
    )
    W = rbm.W.detach()
    if W.dim() == 3:
        W = W[member]
    W = W.cpu().float()
    n = min(n_filters, rbm.n_hidden)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(cols * 0.6 + 0.2, rows * 0.6 + (0.5 if title else 0.2)))
    FigureCanvasAgg(fig)
    for j in range(rows * cols):
        ax = fig.add_subplot(rows, cols, j + 1)
        ax.set_axis_off()
        if j < n:
            w = W[:, j].reshape(image_shape)
            lim = float(w.abs().max()) or 1.0
            ax.imshow(w.numpy(), cmap="gray", vmin=-lim, vmax=lim, interpolation="nearest")
    top = 1 - 0.4 / fig.get_figheight() if title else 0.98
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=top, wspace=0.05, hspace=0.05)
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
