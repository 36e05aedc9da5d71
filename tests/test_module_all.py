"""Every module of the library (the command line and the studies aside) says what it exports:
an ``__all__`` whose names all exist, so ``from module import *``, the API reference and the
type checker agree on the public surface."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
SKIP_PARTS = {"cli", "studies", "__pycache__"}
SKIP_NAMES = {"__main__.py", "_version.py"}


def _modules() -> list[str]:
    out = []
    for path in sorted((SRC / "smithing").rglob("*.py")):
        rel = path.relative_to(SRC)
        if SKIP_PARTS & set(rel.parts) or path.name in SKIP_NAMES:
            continue
        name = ".".join(rel.with_suffix("").parts)
        out.append(name.removesuffix(".__init__"))
    return out


@pytest.mark.parametrize("name", _modules())
def test_the_module_declares_what_it_exports(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
