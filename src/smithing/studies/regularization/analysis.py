"""The regularization study's figure list and table."""

from __future__ import annotations

import math

import numpy as np

from smithing.experiment import Figure, Table, mean_std_ci
from smithing.studies.regularization.averaging import (
    averaging_figure,
)
from smithing.studies.regularization.charts import (
    _finals,
    curves_figure,
    gap_figure,
    weights_figure,
)

__all__ = [
    "figures",
    "table",
]


def figures(results, out_dir: str) -> list[Figure]:
    out = [
        Figure(
            gap_figure(results, out_dir),
            "Final training, validation and test error per variant (mean ± sample std over "
            "seeds); the label above each group is the generalization gap, test − train error "
            "(points).",
        ),
        Figure(
            curves_figure(results, out_dir),
            "Training error (eval mode) and validation error per epoch. DropConnect's curves "
            "use the cheap mean inference; its final numbers use Gaussian moment matching.",
        ),
    ]
    w = weights_figure(results, out_dir)
    if w is not None:
        out.append(
            Figure(
                w,
                "Histograms of log10 |w| of the first layer's weights, all seeds pooled, each "
                "against the unregularized network (grey). L1 drives many weights to (near) zero "
                "-- the subgradient leaves them dithering around 0, not at exactly 0 -- while L2 "
                "shrinks all of them; the weights from digits' always-blank pixels get no data "
                "gradient and keep their initial values unless a penalty decays them.",
            )
        )
    path, caption = averaging_figure(out_dir)
    out.append(Figure(path, caption))
    return out


def table(results) -> Table:
    rows = []
    for v in results.variants():
        runs = [r for r in results.of(v) if r.status == "done"]
        cells = [v]
        for key in ("train_error", "valid_error", "test_error"):
            m, s = _finals(results, v, key)
            cells.append(f"{m:.2f} ± {s:.2f}" if math.isfinite(m) else "n/a")
        gaps = [
            100 * (r.final["test_error"] - r.final["train_error"])
            for r in runs
            if math.isfinite(r.final.get("test_error", math.nan))
        ]
        mg, sg, _, n = mean_std_ci(gaps)
        cells.append(f"{mg:.2f} ± {sg:.2f}" if n else "n/a")
        small = [100 * r.extra["w1"]["small_fraction"] for r in runs if "w1" in r.extra]
        cells.append(f"{np.mean(small):.1f}" if small else "n/a")
        cells.append(len(runs))
        rows.append(cells)
    return Table(
        [
            "variant",
            "train error (%)",
            "valid error (%)",
            "test error (%)",
            "gap test − train",
            "layer-1 |w| < 1e-3 (%)",
            "runs",
        ],
        rows,
        "Final errors, mean ± sample std over seeds.",
    )
