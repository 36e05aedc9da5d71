"""``smithing list``: every registry (datasets, studies, initializers with their torch / Keras
aliases, optimizers, pruning methods, ...)."""

from __future__ import annotations

NAME = "list"
HELP = "list datasets, studies and every registry (with aliases)"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from rich.table import Table

    import smithing.studies  # noqa: F401  (registers the studies)
    from smithing import registries
    from smithing.cli._common import console

    con = console()
    for title, entries in registries.all_registries():
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        table.add_column("name", style="bold")
        table.add_column("description")
        for name, desc in entries:
            table.add_row(name, desc)
        con.print(table)
        con.print()
    return 0
