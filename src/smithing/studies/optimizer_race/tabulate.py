"""The race's table: each optimizer's chosen rate and final losses."""

from __future__ import annotations

import math

import numpy as np

from smithing.experiment import (
    Table,
    mean_std_ci,
)
from smithing.studies.optimizer_race.configs import (
    _mlp_runs,
    _order,
    _surface_runs,
    chosen_lrs,
)
from smithing.studies.optimizer_race.surfaces import (
    OPTIMIZERS,
    STEPS,
    SURFACE_NAMES,
)

__all__ = [
    "table",
]

# ------------------------------------------------------------------------------ table


def table(results) -> Table:
    rows = []
    runs = _mlp_runs(results)
    if runs:
        best = chosen_lrs(results)
        ds = next(iter(next(iter(runs.values())).values()))[0].config.get("dataset", "mlp")
        for o in _order(runs):
            lrs = sorted(runs[o])
            rs = runs[o][best[o]]
            edge = " (grid edge)" if best[o] in (lrs[0], lrs[-1]) and len(lrs) > 1 else ""
            mv, sv, _, _ = mean_std_ci([r.final.get("valid_error", math.nan) for r in rs])
            mt, st, _, n = mean_std_ci([r.final.get("test_error", math.nan) for r in rs])
            res = (
                f"test error {100 * mt:.2f} ± {100 * st:.2f} % (valid {100 * mv:.2f} %)"
                if n
                else "n/a"
            )
            rows.append([f"MLP on {ds}", o, f"{best[o]:g}{edge}", res, n])
    sruns = _surface_runs(results)
    for sname in SURFACE_NAMES:
        for o in OPTIMIZERS:
            rs = sruns.get((sname, o))
            if not rs:
                continue
            r0 = next((r for r in rs if r.seed == 0), rs[0])
            lr = r0.extra["lr"]
            grid = r0.extra.get("lr_grid_finals")
            edge = ""
            if grid and str(lr) in (next(iter(grid)), list(grid)[-1]):
                edge = " (grid edge)"
            src = r0.extra.get("lr_tuned_on")
            src = f" (from {src})" if src and src != sname else ""
            finals = [float(r.final["final_loss"]) for r in rs]
            med = float(np.median(finals))
            d = r0.final.get("distance_to_minimum")
            dist = "" if d is None or not math.isfinite(d) else f", {d:.2g} from the minimum"
            n_left = sum(r.extra.get("left_window_step") is not None for r in rs)
            gone = f"; {n_left} left the window" if n_left else ""
            res = (
                f"final f {r0.final['final_loss']:.3g}{dist} "
                f"(median over {len(rs)} starts {med:.3g}{gone})"
            )
            rows.append([sname, o, f"{lr:.3g}{src}{edge}", res, len(rs)])
    return Table(
        ["task", "optimizer", "learning rate", "result", "runs"],
        rows,
        "MLP: the learning rate with the best mean final validation error on the grid; test "
        "error mean ± sample std over seeds at that rate. Surfaces: seed 0 from the exact start "
        f"after {STEPS} steps; the median includes the jittered starts of seeds > 0.",
    )
