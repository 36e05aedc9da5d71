"""The core stays below everything: no core module imports upward (not even lazily), the
pretraining code and ``smithing.init`` never load a dataset by name, and ``smithing.init`` does
not import the pretraining code (the experiment layer registers the ``"dbn"`` / ``"sda"``
sources of the ``pretrained`` initializer instead)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import smithing

SRC = Path(smithing.__file__).parent
#: modules above the core, which no core module may import
UPWARD = (
    "smithing.train.diagnostics",
    "smithing.runner",
    "smithing.studies",
    "smithing.report",
    "smithing.experiment",
    "smithing.cli",
    "smithing.commands",
)


def _core_files() -> list[Path]:
    files: list[Path] = []
    for package in ("init", "nn", "optim", "pretrain"):
        files += sorted((SRC / package).rglob("*.py"))
    return files


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = SRC) -> set[str]:
    """Every module ``path`` (under the package folder ``root``) imports anywhere, top level or
    inside functions: ``from smithing import data`` counts as ``smithing.data`` too; relative
    imports are resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def _hits(modules: set[str], prefixes) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_core_module_does_not_import_upward(path):
    assert _hits(imported_modules(path), UPWARD) == []


@pytest.mark.parametrize(
    "path",
    [*sorted((SRC / "init").rglob("*.py")), *sorted((SRC / "pretrain").rglob("*.py"))],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_init_and_pretrain_do_not_load_datasets(path):
    # tensors are passed in: no dataset loader, no dataset registry
    assert _hits(imported_modules(path), ("smithing.data",)) == []


@pytest.mark.parametrize(
    "path", sorted((SRC / "init").rglob("*.py")), ids=lambda p: str(p.relative_to(SRC))
)
def test_init_does_not_import_pretrain(path):
    assert _hits(imported_modules(path), ("smithing.pretrain",)) == []


def test_the_scanner_sees_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "smithing" / "pretrain"
    pkg.mkdir(parents=True)
    f = pkg / "mod.py"
    f.write_text(
        "def f():\n"
        "    from smithing import experiment\n"
        "    from ..data import load\n"
        "    import smithing.runner.runner\n"
    )
    found = imported_modules(f, tmp_path / "smithing")
    assert {"smithing.experiment", "smithing.data.load", "smithing.runner.runner"} <= found


def test_importing_the_core_loads_nothing_above_it():
    # smithing.train.diagnostics is checked statically only (above): the core may import
    # smithing.train's lower parts (e.g. checkpoints), whose package loads the trainers
    code = (
        "import sys\n"
        "import smithing.init, smithing.optim, smithing.nn, smithing.pretrain\n"
        f"up = {UPWARD[1:]!r}\n"
        "print(sorted(m for m in sys.modules if m.startswith(up)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
    code = (
        "import sys, smithing.init\n"
        "print(sorted(m for m in sys.modules if m.startswith(('smithing.pretrain',"
        " 'smithing.data'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
