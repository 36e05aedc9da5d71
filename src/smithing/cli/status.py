"""``smithing status --out DIR``: runs per state, and who runs what (worker, epoch, ETA)."""

from __future__ import annotations

import json
import time

NAME = "status"
HELP = "runs per state; running runs with their worker, epoch and ETA"


def add_arguments(p) -> None:
    p.add_argument("--out", default="smithing-out")
    p.add_argument("--study", default=None, help="only this study")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _duration(s: float | None) -> str:
    if s is None:
        return "?"
    s = max(0, int(round(s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def status(out: str, study: str | None = None) -> dict:
    """Per study the count of runs in each state and the running runs (JSON-able)."""
    from smithing.experiment.store import Store

    now = time.time()
    with Store(out, create=False) as store:
        studies = [study] if study else store.studies()
        report = {}
        for name in studies:
            running = store.running(name)
            for r in running:
                r["lease"] = (
                    "live" if (r["lease_expires"] or 0) > now else "expired (will be taken over)"
                )
            report[name] = {"counts": store.counts(name), "running": running}
    return {"out": out, "time": now, "studies": report}


def run(args) -> int:
    from smithing.cli._common import console

    rep = status(args.out, args.study)
    if args.json:
        print(json.dumps(rep))
        return 0
    from rich.table import Table

    con = console()
    if not rep["studies"]:
        con.print(f"no runs in {args.out}")
    for name, s in rep["studies"].items():
        counts = ", ".join(f"{k} {v}" for k, v in sorted(s["counts"].items()))
        con.print(f"[bold]{name}[/]: {counts}")
        if not s["running"]:
            continue
        table = Table(box=None, title_justify="left")
        for c in ("run", "variant", "seed", "worker", "epoch", "ETA", "lease"):
            table.add_column(c)
        for r in s["running"]:
            p = r["progress"]
            epoch = f"{p['epoch']}/{p['epochs']}" if p.get("epoch") else "-"  # - : not reported
            if p.get("epoch") and p.get("phase"):
                epoch = f"{p['phase']} {epoch}"  # a multi-phase run, e.g. "layer1 23/50"
            table.add_row(
                str(r["run_id"]),
                r["variant"],
                str(r["seed"]),
                str(r["worker"]),
                epoch,
                _duration(p.get("eta_s")) if p else "?",
                r["lease"],
            )
        con.print(table)
    return 0
