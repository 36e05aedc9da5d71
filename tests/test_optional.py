"""Optional dependencies: the core imports none of them, and a missing one is one line that
names the extra to install (simulated by blocking the import)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from smithing._optional import EXTRAS, MissingExtraError, missing_message, require

SRC = Path(__file__).resolve().parents[1] / "src"
OPTIONAL = ("matplotlib", "PIL", "sklearn", "ray", "tensorboard")


def test_require_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(MissingExtraError) as e:
        require("matplotlib.pyplot", "smithing report")
    assert str(e.value) == "smithing report needs matplotlib: pip install 'smithing[report]'"
    assert isinstance(e.value, ImportError)


@pytest.mark.parametrize("module", OPTIONAL)
def test_every_optional_module_has_its_extra(module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)
    package, extra = EXTRAS[module]
    with pytest.raises(MissingExtraError) as e:
        require(module, "X")
    assert str(e.value) == f"X needs {package}: pip install 'smithing[{extra}]'"


def test_a_broken_install_is_not_reported_as_missing(monkeypatch, tmp_path):
    (tmp_path / "halfpkg").mkdir()
    (tmp_path / "halfpkg" / "__init__.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        require("halfpkg", "X")


def test_the_figures_say_which_extra(monkeypatch):
    from smithing import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'smithing\[report\]'"):
        plots.plt()


def test_the_cli_prints_one_line_naming_the_extra(monkeypatch, capsys):
    import smithing.data.base as base
    from smithing.cli import main

    monkeypatch.setattr(base, "_CACHE", {})  # digits not loaded yet in this process
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    rc = main(["train", "--dataset", "digits", "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == (
        "smithing train: error: the digits dataset needs scikit-learn: "
        "pip install 'smithing[sklearn]'\n"
    )


def test_the_estimators_say_which_extra(monkeypatch):
    import importlib

    for name in [m for m in sys.modules if m.startswith("smithing.sklearn")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError) as e:  # the package's own guard, in the same words
        importlib.import_module("smithing.sklearn")
    assert str(e.value) == "smithing.sklearn needs scikit-learn: pip install 'smithing[sklearn]'"


def test_missing_message_of_an_unknown_module_points_to_all():
    assert missing_message("foo.bar", "X") == "X needs foo: pip install 'smithing[all]'"


BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = {blocked!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    sys.meta_path.insert(0, Block())
    """
)


def test_the_core_and_the_cli_import_without_any_extra():
    code = BLOCKER.format(blocked=OPTIONAL) + textwrap.dedent(
        """
        import smithing, smithing.data, smithing.nn, smithing.init, smithing.optim
        import smithing.train, smithing.pretrain, smithing.regularize, smithing.models
        import smithing.checkpoint, smithing.doctor, smithing.experiment, smithing.plots
        import smithing.cli
        from smithing.train.diagnostics import GradientMonitor
        loaded = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
        assert not loaded, loaded
        try:
            smithing.cli.main(["--help"])
        except SystemExit as e:
            assert e.code == 0
        print("ok")
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok") and "doctor" in r.stdout
