"""The rbm study's table: test log-probabilities (AIS and exact) per variant."""

from __future__ import annotations

from smithing.experiment import (
    Table,
    mean_std_ci,
)
from smithing.studies.rbm.configs import (
    PAPER_LOG_PROB,
)

__all__ = [
    "table",
]


def _pm(values: list[float], fmt: str = "{:.2f}") -> str:
    mean, std, _, n = mean_std_ci(values)
    if not n:
        return "n/a"
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


def table(results) -> Table:
    paper = any(r.config.get("dataset", "").startswith("mnist") for r in results.runs)
    cols = [
        "variant",
        "test log p, AIS (nats)",
        "test log p, exact",
        "AIS − exact log Z",
        "exact in AIS ±3σ",
        "train log p, AIS",
        "recon error",
        "pseudo-LL (test)",
        "runs",
    ]
    if paper:
        cols.append("Salakhutdinov & Murray 2008")
    rows = []
    for v in results.variants():
        done = [r for r in results.of(v) if r.status == "done"]
        exact = [r for r in done if "exact_log_z" in r.final]
        row = [
            v,
            _pm([r.final["test_log_prob"] for r in done]),
            _pm([r.final["test_log_prob_exact"] for r in exact]) if exact else "n/a",
            _pm([r.final["ais_error"] for r in exact], "{:.3f}") if exact else "n/a",
            f"{sum(bool(r.final['ais_covers_exact']) for r in exact)}/{len(exact)}"
            if exact
            else "n/a",
            _pm([r.final["train_log_prob"] for r in done]),
            _pm([r.final["recon_error"] for r in done], "{:.4f}"),
            _pm([r.final["test_pseudo_likelihood"] for r in done]),
            f"{len(done)}/{len(results.of(v))}",
        ]
        if paper:
            row.append(PAPER_LOG_PROB.get(v, "—"))
        rows.append(row)
    return Table(
        cols,
        rows,
        "Average log-probability per example (nats, higher is better): mean ± sample std over "
        "seeds. AIS: 100 runs from a base-rate model; exact: enumeration of the smaller layer.",
    )
