"""The documentation site's build hooks (scripts/docs_hooks.py): math rendered to MathML at
build time, and a formula that cannot be rendered fails the build with its page named."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("latex2mathml")

HOOKS = Path(__file__).resolve().parents[1] / "scripts" / "docs_hooks.py"


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", HOOKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inline_and_display_math_become_mathml(hooks):
    html = (
        '<p>a <span class="arithmatex">\\(b^2 / 3\\)</span> and</p>\n'
        '<div class="arithmatex">\\[\\sqrt{\\frac{6}{n_{in} + n_{out}}} &lt; 1\\]</div>'
    )
    out = hooks.render_math(html, where="page.md")
    assert "arithmatex" not in out and "\\(" not in out
    assert out.count("<math") == 2
    assert 'display="inline"' in out and 'display="block"' in out
    assert "<msqrt>" in out and "<mfrac>" in out  # the structure, not the TeX text
    assert "&lt;" in out or "&#x0003C;" in out  # the escaped "<" came back as an operator


@pytest.mark.parametrize("tex", ["x^", "\\sqrt{", "\\lefft( x \\right)", "\\foo{x}"])
def test_a_formula_that_cannot_be_rendered_names_its_page(hooks, tex):
    bad = f'<span class="arithmatex">\\({tex}\\)</span>'
    with pytest.raises(ValueError, match=r"guide/x\.md: cannot render the formula"):
        hooks.render_math(bad, where="guide/x.md")


def test_html_without_math_is_unchanged(hooks):
    html = "<p>no <code>$x$</code> math here</p>"
    assert hooks.render_math(html) == html


def _extensions():
    spec = importlib.util.spec_from_file_location(
        "griffe_ext", HOOKS.with_name("griffe_sphinx_roles.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grouped_parameters_become_one_entry_each_so_griffe_can_check_them():
    pytest.importorskip("griffe")
    expand = _extensions().expand_groups
    doc = (
        "Summary.\n\nArgs:\n    x, y: inputs and\n        targets.\n\n    lr: the step.\n\n"
        "Returns:\n    a, b: left alone (not parameters).\n"
    )
    assert expand(doc) == (
        "Summary.\n\nArgs:\n    x: inputs and\n        targets.\n    y: inputs and\n"
        "        targets.\n\n    lr: the step.\n\nReturns:\n    a, b: left alone (not "
        "parameters)."
    )
    assert expand("Args:\n    *args, **kwargs: passed on.") == (
        "Args:\n    *args: passed on.\n    **kwargs: passed on."
    )
    prose = "Note:\n    Weights, biases: both decay."  # not an Args section
    assert expand(prose) == prose
