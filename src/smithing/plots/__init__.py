"""Figure helpers shared by the studies (matplotlib, Agg backend, PNG files).

Learning curves with a band over seeds, box plots of final metrics, image tiles (filters,
samples) and side-by-side image panels. matplotlib is imported on first use (:func:`plt`).
Below the studies: nothing here imports a study, the runner or the report.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from smithing._optional import require

__all__ = ["final_box", "image_panels", "learning_curves", "mean_band", "plt", "save", "tile"]


def plt():
    """``matplotlib.pyplot`` on the Agg backend (one line naming the extra when missing)."""
    matplotlib = require("matplotlib", "the figures")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "the figures")


def save(fig, out_dir: str | Path, name: str) -> str:
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt().close(fig)
    return name


def mean_band(curves: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epoch axis, mean and std over runs of possibly unequal length (NaN-padded)."""
    if not curves:
        return np.array([]), np.array([]), np.array([])
    L = max(len(c) for c in curves)
    a = np.full((len(curves), L), np.nan)
    for i, c in enumerate(curves):
        a[i, : len(c)] = c
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(a, 0)
            std = np.nanstd(a, 0)
    return np.arange(1, L + 1), mean, std


def learning_curves(
    results,
    keys=("train_loss", "valid_error"),
    out_dir=".",
    name="curves.png",
    title="",
    logy=(True, False),
    percent=(False, True),
):
    """One panel per metric: mean over seeds with a +-1 std band, one line per variant."""
    p = plt()
    fig, axes = p.subplots(1, len(keys), figsize=(5.2 * len(keys), 3.8), squeeze=False)
    for ax, key, ly, pc in zip(axes[0], keys, logy, percent):
        for v in results.variants():
            x, m, s = mean_band(results.curves(v, key))
            if not len(x):
                continue
            k = 100.0 if pc else 1.0
            (line,) = ax.plot(x, k * m, label=v)
            ax.fill_between(x, k * (m - s), k * (m + s), color=line.get_color(), alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key.replace("_", " ") + (" (%)" if pc else ""))
        if ly:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, out_dir, name)


def final_box(results, key="test_error", out_dir=".", name="final.png", title="", percent=True):
    p = plt()
    fig, ax = p.subplots(figsize=(1.3 * max(4, len(results.variants())), 3.8))
    vs = results.variants()
    k = 100.0 if percent else 1.0
    data = [[k * x for x in results.finals(v, key) if math.isfinite(x)] for v in vs]
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(vs) + 1), vs, rotation=20)
    ax.set_ylabel(key.replace("_", " ") + (" (%)" if percent else ""))
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save(fig, out_dir, name)


def tile(
    images: np.ndarray, shape: tuple[int, int], cols: int | None = None, *, symmetric: bool = False
) -> np.ndarray:
    """Images ``(n, rows * cols_px)`` laid out in a grid with ``cols`` columns (default: a square
    grid, ``ceil(sqrt(n))``) and 1-pixel borders; each image scaled to ``[0, 1]`` on its own
    (``symmetric``: ``[-max|x|, max|x|]``, grey = 0, for filters) or kept as is (probabilities)."""
    n = images.shape[0]
    cols = cols or math.ceil(math.sqrt(n))
    r, c = shape
    rows = max(1, math.ceil(n / cols))
    out = np.ones((rows * (r + 1) + 1, cols * (c + 1) + 1))
    for i in range(n):
        img = images[i].reshape(r, c).astype(float)
        if symmetric:
            lim = np.abs(img).max() or 1.0
            img = 0.5 + 0.5 * img / lim
        y, x = divmod(i, cols)
        out[1 + y * (r + 1) : 1 + y * (r + 1) + r, 1 + x * (c + 1) : 1 + x * (c + 1) + c] = img
    return out


def image_panels(panels: list[tuple[str, np.ndarray]], out_dir: str, name: str, title: str = ""):
    """One grey-scale panel per ``(title, image)`` side by side; saved as ``name``."""
    p = plt()
    n = len(panels)
    fig, axes = p.subplots(1, n, figsize=(3.4 * n, 3.8), squeeze=False)
    for ax, (t, img) in zip(axes[0], panels):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(t, fontsize=9)
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, out_dir, name)
