"""Every ``>>>`` example in a docstring of the package runs, as a doctest.

The modules are found from the source (any file with ``>>>``), so a new example is tested
without registering it here; a module whose examples fail fails its own test.
"""

from __future__ import annotations

import doctest
import importlib
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules_with_examples() -> list[str]:
    out = []
    for p in sorted((SRC / "smithing").rglob("*.py")):
        if ">>>" in p.read_text(encoding="utf-8"):
            parts = list(p.relative_to(SRC).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append(".".join(parts))
    return out


MODULES = _modules_with_examples()


def test_some_modules_have_examples():
    assert "smithing.doctor.initmatch" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    importlib.import_module(name)
    module = sys.modules[name]  # not getattr: a package may re-export a same-named function
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name}: no example found"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
