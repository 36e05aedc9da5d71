"""Contour plots of 2-D surfaces with optimizer trajectories, still and animated (GIF).

The animation follows the well-known cs231n / Alec Radford pictures of the "race of the
optimizers": one moving dot with its path so far per optimizer over a contour plot of the
surface. Frames are rendered by blitting (the contours drawn once) and written by Pillow (no
ffmpeg needed); see :func:`race_gif`.

Inputs are plain arrays: a path is a ``(steps + 1, 2)`` array of iterates, so these helpers do
not depend on how the paths were made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from smithing._optional import require
from smithing._registry import check
from smithing.plots import plt

__all__ = ["PALETTE", "colors", "draw_contours", "draw_paths", "race_gif"]

#: colours of the optimizers, the same in every figure of a study (tab10 order)
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)


def colors(labels: Sequence[str]) -> dict[str, str]:
    """A fixed colour per label, in order (cycling after ten)."""
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(labels)}


def draw_contours(ax, surface, n: int = 200, n_levels: int = 25, cmap: str = "Greys_r") -> None:
    """Contours of ``surface`` (a :class:`~smithing.data.surfaces.Surface`) over its window.

    Surfaces with a minimum get log-spaced levels of ``f - f_min`` (from 1e-3 of the range up to
    its maximum in the window), so the flat valley floor shows as well as the steep walls;
    surfaces unbounded below (``f_min`` None, e.g. the saddle) get evenly spaced levels of ``f``.
    Global minima are drawn as stars, known saddle points as crosses.
    """
    X, Y, Z = (t.numpy() for t in surface.grid(n))  # (n, n) each
    if surface.f_min is not None:
        D = np.maximum(Z - surface.f_min, 0.0)  # (n, n), >= 0
        hi = float(D.max())
        lo = max(hi * 1e-6, 1e-3) if hi > 0 else 1e-3
        levels = np.logspace(math.log10(lo), math.log10(hi), n_levels)  # log-spaced levels
        ax.contour(X, Y, D, levels=levels, cmap=cmap, linewidths=0.6, alpha=0.8)
    else:
        ax.contour(X, Y, Z, levels=n_levels, cmap=cmap, linewidths=0.6, alpha=0.8)
    for mx, my in surface.minima:
        ax.plot(mx, my, "*", color="k", ms=12, zorder=5)
    for sx, sy in surface.saddles:
        ax.plot(sx, sy, "x", color="k", ms=8, mew=2, zorder=5)
    ax.set_xlim(*surface.xlim)
    ax.set_ylim(*surface.ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _check_paths(paths: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for k, p in paths.items():
        a = np.asarray(p, dtype=float)
        if a.ndim != 2 or a.shape[1] != 2:
            raise ValueError(f"path {k!r} must have shape (steps + 1, 2), got {a.shape}")
        out[k] = a
    return out


def draw_paths(ax, paths: Mapping[str, np.ndarray], color: Mapping[str, str]) -> None:
    """Each path as a line with its start (circle) and end (dot) marked."""
    for label, p in _check_paths(paths).items():
        ax.plot(p[:, 0], p[:, 1], "-", color=color[label], lw=1.6, label=label, alpha=0.9)
        ax.plot(p[-1, 0], p[-1, 1], "o", color=color[label], ms=5)
    first = next(iter(paths.values()), None)
    if first is not None:
        ax.plot(first[0][0], first[0][1], "o", mfc="none", mec="k", ms=9, mew=1.5, zorder=6)


def race_gif(
    panels: Sequence[tuple[object, str, Mapping[str, np.ndarray]]],
    out_dir: str | Path,
    name: str,
    *,
    frames: int = 60,
    fps: int = 12,
    dpi: int = 60,
    ncols: int = 2,
    title: str = "",
    hold: float = 1.5,
    colours: int = 64,
) -> str:
    """Write an animated GIF of optimizers racing over one or more surfaces; return ``name``.

    Args:
        panels: ``(surface, panel title, {label: path})`` per panel; a path is an array
            ``(steps + 1, 2)``; all paths of all panels must have the same length.
        frames: number of frames; frame ``k`` shows steps ``0..round(k * steps / (frames - 1))``
            (subsampled evenly, first and last step included).
        fps: frames per second; the last frame is held ``hold`` seconds more.
        dpi: resolution (a panel is 5 x 4.2 inches: 300 x 252 pixels at 60 dpi).
        colours: size of the one palette shared by all frames (taken from the last frame).

    How: the contours are drawn once and copied back before each frame (blitting), only the
    moving lines and dots are drawn per frame; the frames are quantized to one palette without
    dithering, pixels unchanged since the previous frame are made transparent (the GIF keeps
    the previous frame under each one) and Pillow writes the file. This is what
    ``matplotlib.animation``'s ``PillowWriter`` does, without its full redraw per frame and
    its full-size frames: many times faster and smaller.
    """
    require("matplotlib", "the optimizer-race animation")
    from matplotlib.lines import Line2D

    Image = require("PIL.Image", "the optimizer-race animation")

    check(isinstance(frames, int) and frames >= 2, "frames", frames, "an integer >= 2")
    check(isinstance(fps, int) and fps >= 1, "fps", fps, "a positive integer")
    check(
        isinstance(colours, int) and 2 <= colours <= 256, "colours", colours, "an int in [2, 256]"
    )
    p = plt()
    checked = [(s, t, _check_paths(paths)) for s, t, paths in panels]
    lengths = {len(a) for _, _, paths in checked for a in paths.values()}
    if len(lengths) != 1:
        raise ValueError(f"all paths must have the same length, got lengths {sorted(lengths)}")
    steps = lengths.pop() - 1
    labels = list(dict.fromkeys(k for _, _, paths in checked for k in paths))
    color = colors(labels)
    nrows = math.ceil(len(checked) / ncols)
    fig, axes = p.subplots(
        nrows, ncols, figsize=(5 * ncols, 4.2 * nrows + 0.5), squeeze=False, dpi=dpi
    )
    artists = []  # (path array, line, dot)
    for ax, (s, t, paths) in zip(axes.flat, checked):
        draw_contours(ax, s, n=120)
        ax.set_title(t, fontsize=10)
        for label, a in paths.items():
            (line,) = ax.plot([], [], "-", color=color[label], lw=1.8, animated=True)
            (dot,) = ax.plot([], [], "o", color=color[label], ms=7, animated=True)
            artists.append((a, line, dot))
        if len(paths):
            a0 = next(iter(paths.values()))
            ax.plot(a0[0, 0], a0[0, 1], "o", mfc="none", mec="k", ms=9, mew=1.5)
    for ax in list(axes.flat)[len(checked) :]:
        ax.axis("off")
    handles = [Line2D([], [], color=color[k], marker="o", lw=1.8) for k in labels]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), fontsize=9)
    if title:
        fig.suptitle(title)
    counter = fig.text(0.99, 0.99, "", fontsize=10, ha="right", va="top", animated=True)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    canvas = fig.canvas
    canvas.draw()  # everything but the animated artists
    background = canvas.copy_from_bbox(fig.bbox)

    def render(t: int) -> Image.Image:
        canvas.restore_region(background)
        for a, line, dot in artists:
            line.set_data(a[: t + 1, 0], a[: t + 1, 1])
            dot.set_data([a[t, 0]], [a[t, 1]])
            fig.draw_artist(line)
            fig.draw_artist(dot)
        counter.set_text(f"step {t}/{steps}")
        fig.draw_artist(counter)
        return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())

    step_at = [round(k * steps / (frames - 1)) for k in range(frames)]
    last = render(steps)
    palette = _palette(last, [color[k] for k in labels], colours - 1)
    clear = colours - 1  # palette index reserved for "unchanged since the previous frame"
    frames_p = [
        np.asarray(render(t).quantize(palette=palette, dither=Image.Dither.NONE))
        for t in step_at[:-1]
    ]  # (H, W) palette indices each
    frames_p.append(np.asarray(last.quantize(palette=palette, dither=Image.Dither.NONE)))
    p.close(fig)
    pal = palette.getpalette()[: 3 * (colours - 1)] + [255, 255, 255]  # + the clear index
    images = []
    prev = None
    for a in frames_p:
        # pixels equal to the previous frame's become transparent: tiny, well-compressed frames
        b = a if prev is None else np.where(a == prev, clear, a).astype(np.uint8)
        im = Image.fromarray(b, mode="P")
        im.putpalette(pal)
        images.append(im)
        prev = a
    durations = [round(1000 / fps)] * (len(images) - 1) + [round(1000 / fps + 1000 * hold)]
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        duration=durations,
        loop=0,
        optimize=False,
        transparency=clear,
        disposal=1,  # keep each frame under the next one
    )
    return name


def _palette(image, exact: Sequence[str], n: int):
    """A "P" image whose palette holds the ``exact`` colours (hex), black and white, and the
    rest of ``n`` entries from a median cut of ``image`` (so the lines keep their colours)."""
    from matplotlib.colors import to_rgb

    Image = require("PIL.Image", "the optimizer-race animation")

    fixed = [tuple(round(255 * c) for c in to_rgb(h)) for h in exact] + [(0, 0, 0), (255,) * 3]
    rest = image.quantize(colors=max(1, n - len(fixed)), method=Image.Quantize.MEDIANCUT)
    entries = fixed + [tuple(rest.getpalette()[3 * i : 3 * i + 3]) for i in range(n - len(fixed))]
    pal = Image.new("P", (1, 1))
    pal.putpalette([c for rgb in entries[:n] for c in rgb])
    return pal
