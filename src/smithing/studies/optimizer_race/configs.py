"""The study's variants (surfaces and MLP runs) and the selection of each optimizer's rate."""

from __future__ import annotations

import math

from smithing.experiment import (
    Variant,
)
from smithing.studies.optimizer_race.surfaces import (
    LR_FROM,
    MLP_BASE,
    MLP_LR_GRID,
    OPTIMIZERS,
    STEPS,
    SURFACE_LR_GRID,
    SURFACE_NAMES,
)

__all__ = [
    "chosen_lrs",
    "mlp_name",
    "variants",
]

# ------------------------------------------------------------------------------ variants


def variants(scale: str) -> list[Variant]:
    out = []
    for sname in SURFACE_NAMES:
        for o in OPTIMIZERS:
            cfg = {
                "surface": sname,
                "optimizer": o,
                "steps": STEPS,
                "lr_grid": list(SURFACE_LR_GRID),
                "lr_from": LR_FROM.get(sname, sname),
            }
            out.append(Variant(f"{sname}/{o}", cfg, kind="surface"))
    base = MLP_BASE[scale]
    for o in OPTIMIZERS:
        for lr in MLP_LR_GRID[o]:
            out.append(Variant(mlp_name(o, lr), {**base, "optimizer": o, "lr": lr}))
    return out


def mlp_name(optimizer: str, lr: float) -> str:
    return f"mlp/{optimizer}/lr={lr:g}"


# ------------------------------------------------------------------------------ results


def _surface_runs(results) -> dict[tuple[str, str], list]:
    out: dict[tuple[str, str], list] = {}
    for r in results.runs:
        if "surface" in r.config and r.status == "done":
            out.setdefault((r.config["surface"], r.config["optimizer"]), []).append(r)
    return out


def _mlp_runs(results) -> dict[str, dict[float, list]]:
    """optimizer -> lr -> runs (done or diverged), in the results' order."""
    out: dict[str, dict[float, list]] = {}
    for r in results.runs:
        if "surface" not in r.config and "hidden" in r.config:
            out.setdefault(r.config["optimizer"], {}).setdefault(float(r.config["lr"]), []).append(
                r
            )
    return out


def _mean_final(runs, key: str) -> float:
    vals = [float(r.final.get(key, math.nan)) for r in runs if r.status == "done"]
    vals = [v for v in vals if math.isfinite(v)]
    if len(vals) < len(runs) or not vals:
        return math.inf  # a diverged seed disqualifies the rate
    return sum(vals) / len(vals)


def chosen_lrs(results) -> dict[str, float]:
    """Per optimizer: the grid rate with the lowest mean final validation error over seeds
    (ties: lower mean validation loss; a rate with a diverged seed is never chosen unless all
    are)."""
    out = {}
    for o, by_lr in _mlp_runs(results).items():
        lrs = sorted(by_lr)
        keys = [
            (_mean_final(by_lr[lr], "valid_error"), _mean_final(by_lr[lr], "valid_loss"))
            for lr in lrs
        ]
        out[o] = lrs[min(range(len(lrs)), key=lambda i: keys[i])]
    return out


def _order(keys):
    return sorted(keys, key=lambda o: OPTIMIZERS.index(o) if o in OPTIMIZERS else len(OPTIMIZERS))
