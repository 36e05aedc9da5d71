"""scripts/mutate.py rewrites decorated functions so that mutmut 3 mutates them; the rewrite
must not change what the module does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("libcst")


def _mutate_script():
    spec = importlib.util.spec_from_file_location("_mutate_script", ROOT / "scripts/mutate.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["_mutate_script"] = mod
    spec.loader.exec_module(mod)
    return mod


SAMPLE = """
import contextlib, functools, typing
calls = []

def tag(label):
    def deco(fn):
        calls.append((label, fn.__name__))
        fn.label = getattr(fn, "label", "") + label
        return fn
    return deco

@tag("outer")
@tag("inner")
def f(x):
    return x + 1

@contextlib.contextmanager
def cm(a):
    yield a * 2

class A:
    @property
    def p(self):
        return 3

    @staticmethod
    def s():
        return 4

    @classmethod
    def c(cls):
        return cls.__name__

    @functools.cache
    def cached(self, n):
        return n * n

@typing.overload
def ov(x: int) -> int: ...
@typing.overload
def ov(x: str) -> str: ...
def ov(x):
    return x
"""


def _run(source: str) -> dict:
    ns: dict = {}
    exec(compile(source, "<sample>", "exec"), ns)
    with ns["cm"](5) as v:
        cm_value = v
    a = ns["A"]()
    return {
        "calls": ns["calls"],
        "f": (ns["f"](1), ns["f"].label),
        "cm": cm_value,
        "A": (a.p, ns["A"].s(), ns["A"].c(), a.cached(7), type(ns["A"].__dict__["p"]).__name__),
        "ov": ns["ov"]("z"),
    }


def test_undecorate_keeps_behaviour_and_order():
    mutate = _mutate_script()
    new, count = mutate.undecorate(SAMPLE)
    assert count == 4  # f, cm, A.p, A.cached; not the static/class methods or the overloads
    assert "@tag" not in new and "@property" not in new and "@contextlib" not in new
    assert "@staticmethod" in new and "@classmethod" in new and "@typing.overload" in new
    assert 'f = tag("outer")(tag("inner")(f))' in new
    assert _run(new) == _run(SAMPLE)
    assert _run(SAMPLE)["calls"] == [("inner", "f"), ("outer", "f")]


@pytest.mark.parametrize(
    "module", ["src/smithing/init/rules.py", "src/smithing/nn/dropout.py",
               "src/smithing/optim/optimizers.py", "src/smithing/regularize/prune/methods.py"],
)  # fmt: skip
def test_undecorated_library_modules_still_compile(module):
    mutate = _mutate_script()
    new, count = mutate.undecorate((ROOT / module).read_text())
    assert count > 0
    compile(new, module, "exec")


def test_targets_take_pytest_node_ids_and_check_their_files():
    """``MODULE:TESTS`` accepts ``file.py::test_name``; the file part must exist (checked before
    any scratch copy is made), and the message names that file, not the node id."""
    mod = _mutate_script()
    target = "src/smithing/optim:tests/test_no_such_file.py::test_x"
    with pytest.raises(SystemExit, match=r"^mutate: tests/test_no_such_file\.py does not exist$"):
        mod.run_target(target, keep=False)
