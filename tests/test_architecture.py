"""The layers of the house, checked from the source: no import cycle anywhere, and every import
goes down (docs/DESIGN.md). Imports inside functions count: a lower layer never imports a
higher one, not even lazily."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "smithing"


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(mod: str) -> set[str]:
    """The smithing modules ``mod`` imports (anywhere in its source)."""
    path = MODULES[mod]
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        for n in names:
            if n.startswith("smithing"):
                target = _resolve(n)
                if target and target != mod:
                    out.add(target)
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return out


def test_graph_sees_lazy_imports():
    # the check would be empty if it missed imports inside functions
    assert "smithing.experiment.mlp" in GRAPH["smithing.runner.execute"]
    assert len(MODULES) > 60


def test_no_import_cycle():
    assert _cycles() == []


def _layer(mod: str) -> str:
    parts = mod.split(".")
    top = parts[1] if len(parts) > 1 else ""
    return top


#: what each layer may import (besides itself); everything not listed is off limits
CORE = {
    "_registry",
    "_version",
    "data",
    "init",
    "optim",
    "nn",
    "regularize",
    "pretrain",
    "train",
    "models",
    "history",
    "callbacks",
    "precision",
    "compiled",
}
ALLOWED = {
    "_registry": set(),
    "history": {"_registry"},
    "callbacks": {"_registry"},
    "data": {"_registry"},
    "init": {"_registry", "nn"},
    "optim": {"_registry"},
    "nn": {"_registry", "init"},
    "regularize": {"_registry", "nn"},
    "checkpoint": {"_registry"},
    "precision": {"_registry"},
    "compiled": {"_registry"},
    "pretrain": {
        "_registry",
        "init",
        "optim",
        "nn",
        "regularize",
        "checkpoint",
        "history",
        "callbacks",
        "precision",
        "compiled",
    },
    "train": {
        "_registry",
        "data",
        "init",
        "optim",
        "nn",
        "regularize",
        "pretrain",
        "checkpoint",
        "history",
        "callbacks",
        "precision",
        "compiled",
    },
    "models": {"_registry", "nn", "pretrain"},
    "plots": {"_registry"},
    "experiment": CORE | {"checkpoint"},
    "studies": CORE | {"checkpoint", "experiment", "plots", "studies"},
    "runner": CORE | {"checkpoint", "experiment"},
    "report": {"_registry", "experiment", "plots"},
    "sklearn": CORE | {"checkpoint"},
    "doctor": CORE | {"plots", "checkpoint"},
    "registries": CORE | {"experiment"},
    "cli": CORE
    | {"checkpoint", "experiment", "runner", "report", "studies", "registries", "cli", "doctor"},
    "__main__": {"cli"},
    "_version": set(),
    "_optional": set(),
    # the root package: __version__, and the public entry points imported lazily
    "": {"_version", "models", "data", "nn", "train", "runner", "studies", "doctor"},
}


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_imports_go_down(mod):
    layer = _layer(mod)
    allowed = ALLOWED.get(layer)
    if allowed is not None:
        allowed = allowed | {"_version", "_optional"}  # everyone may ask for an extra
    assert allowed is not None, f"{mod}: layer {layer!r} is not in the layer table"
    bad = sorted(t for t in GRAPH[mod] if _layer(t) != layer and _layer(t) not in allowed)
    assert not bad, f"{mod} ({layer}) imports a higher or foreign layer: {bad}"


def test_no_study_imports_another_study():
    for mod, targets in GRAPH.items():
        if mod.startswith("smithing.studies.") and mod != "smithing.studies":
            own = ".".join(mod.split(".")[:3])  # a study module, or the package of one study
            others = [
                t
                for t in targets
                if t.startswith("smithing.studies") and ".".join(t.split(".")[:3]) != own
            ]
            assert not others, f"{mod} imports {others}"


def test_nothing_imports_the_cli():
    for mod, targets in GRAPH.items():
        if not (mod.startswith("smithing.cli") or mod == "smithing.__main__"):
            assert not any(t.startswith("smithing.cli") for t in targets), mod


def test_cli_dispatches_through_its_table():
    from smithing.cli import VERBS, build_parser

    src = "".join(p.read_text() for p in (PKG / "cli").glob("*.py"))
    assert "getattr(commands" not in src and "cmd_" not in src
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(v.NAME for v in VERBS)


CORE_PACKAGES = ("smithing.nn", "smithing.init", "smithing.optim", "smithing.pretrain")


@pytest.mark.parametrize(
    "mod", sorted(m for m in MODULES if m.startswith(CORE_PACKAGES) or m in CORE_PACKAGES)
)
def test_core_loads_no_dataset_by_name(mod):
    """nn/, init, optim and pretrain/ take tensors: no dataset registry, no ``data.load``."""
    assert not any(t.startswith("smithing.data") for t in GRAPH[mod]), mod


@pytest.mark.parametrize("pkg", sorted(m for m, p in MODULES.items() if p.name == "__init__.py"))
def test_every_package_declares_its_public_names(pkg):
    import importlib

    mod = importlib.import_module(pkg)
    names = getattr(mod, "__all__", None)
    assert names, f"{pkg} has no __all__"
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{pkg}.__all__ names what it does not have: {missing}"


def test_import_smithing_gives_the_main_entry_points():
    import smithing

    for name in smithing.__all__:
        assert getattr(smithing, name) is not None, name
    assert smithing.fit.__module__ == "smithing.train.loop"


def test_the_package_is_marked_typed():
    assert (PKG / "py.typed").exists()
