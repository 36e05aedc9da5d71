"""Every registry of the project, for ``smithing list``."""

from __future__ import annotations

import importlib

__all__ = ["REGISTRIES", "all_registries"]

#: (title, module, attribute) of each registry ``smithing list`` shows, in that order
REGISTRIES = (
    ("datasets", "smithing.data", "DATASETS"),
    ("studies", "smithing.studies", "STUDIES"),
    ("reproductions", "smithing.experiment", "REPRODUCTIONS"),
    ("initializers", "smithing.init", "INITIALIZERS"),
    ("pretrained sources", "smithing.init", "PRETRAINED"),
    ("optimizers", "smithing.optim", "OPTIMIZERS"),
    ("schedules", "smithing.optim", "SCHEDULES"),
    ("activations", "smithing.nn.activations", "ACTIVATIONS"),
    ("dropout modes", "smithing.nn.dropout", "DROPOUT_MODES"),
    ("DropConnect inference", "smithing.nn.dropconnect", "DROPCONNECT_INFERENCE"),
    ("pruning methods", "smithing.regularize", "PRUNE_METHODS"),
    ("recurrent inits", "smithing.nn.rnn", "RECURRENT_INITS"),
    ("recurrent constraints", "smithing.nn.rnn", "CONSTRAINTS"),
    ("pretraining stacks", "smithing.pretrain.stack_spec", "STACK_KINDS"),
    ("corruptions", "smithing.pretrain.autoencoder", "CORRUPTIONS"),
    ("surfaces", "smithing.data.surfaces", "SURFACES"),
)


def all_registries() -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(name, description)]) for each registry that is importable; a name's aliases
    (other libraries' spellings, e.g. torch's ``xavier_uniform`` for ``glorot_uniform``) end
    its description as ``(also: ...)``."""
    out = []
    for title, module, attr in REGISTRIES:
        try:
            reg = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        if title == "datasets":
            from smithing.data import names

            names()
        out.append((title, [(e.name, _describe(reg, e)) for e in reg.entries()]))
    return out


def _describe(reg, entry) -> str:
    spellings = [entry.name, *reg.aliases_of(entry.name)]
    # torch's trailing-underscore spellings (xavier_uniform_) go without saying
    aliases = [a for a in spellings[1:] if not (a.endswith("_") and a[:-1] in spellings)]
    if not aliases:
        return entry.description
    return f"{entry.description} (also: {', '.join(aliases)})".lstrip()
