"""Every registry of the project, for ``smithing list``."""

from __future__ import annotations

import importlib


def all_registries() -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(name, description)]) for each registry that is importable."""
    out = []
    for title, module, attr in (
        ("datasets", "smithing.data", "DATASETS"),
        ("studies", "smithing.studies", "STUDIES"),
        ("initializers", "smithing.init", "INITIALIZERS"),
        ("optimizers", "smithing.optim", "OPTIMIZERS"),
        ("schedules", "smithing.optim", "SCHEDULES"),
        ("activations", "smithing.nn.activations", "ACTIVATIONS"),
        ("surfaces", "smithing.data.surfaces", "SURFACES"),
    ):
        try:
            reg = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        if title == "datasets":
            from smithing.data import names

            names()
        out.append((title, [(e.name, e.description) for e in reg.entries()]))
    return out
