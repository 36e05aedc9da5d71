"""``smithing datasets``: which datasets are present, where, and their checksums."""

from __future__ import annotations

import json

NAME = "datasets"
HELP = "which datasets are present, where, and checksums"


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    from smithing.cli._common import console
    from smithing.data import DATASETS, data_dir, names

    names()
    rows = []
    for e in DATASETS.entries():
        spec = e.obj
        status = spec.status(data_dir()) if spec.status else []
        if not spec.files and not status:
            state = "built in (no download)"
        elif all(s.get("present") and s.get("md5_ok") is not False for s in status):
            state = "present"
        elif any(s.get("present") for s in status):
            state = "partial"
        else:
            state = "missing (downloaded on first use)"
        rows.append(
            {"name": spec.name, "state": state, "description": spec.description, "files": status}
        )
    if args.json:
        print(json.dumps({"data_dir": str(data_dir()), "datasets": rows}, indent=1, default=str))
        return 0
    from rich.table import Table

    table = Table(title=f"datasets (data dir: {data_dir()})", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("state")
    table.add_column("description")
    for r in rows:
        table.add_row(r["name"], r["state"], r["description"])
    console().print(table)
    return 0
