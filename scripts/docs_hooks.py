"""mkdocs hooks of the documentation site (mkdocs.yml ``hooks:``).

* ``<!-- smithing-cli-reference -->`` in a page becomes the command-line reference, generated
  from the argparse parsers of :mod:`smithing.cli` (the ``--help`` of every verb), so it can
  never drift from the code.
* Math is rendered at build time: pymdownx.arithmatex (generic mode) marks ``$...$`` /
  ``$$...$$`` in the pages and in the docstrings as ``<span class="arithmatex">\\(...\\)</span>``
  and ``<div class="arithmatex">\\[...\\]</div>``; :func:`on_page_content` replaces each with
  MathML (latex2mathml), which browsers render natively. No script, no CDN: the built site
  shows its formulas offline. A formula latex2mathml cannot parse fails the build, naming the
  page and the formula.
* ``<!-- smithing-init-rules -->`` in a page becomes one section per registered initializer
  (``smithing.init.INITIALIZERS``, the names ``smithing list`` shows): the rule's name, how it
  is called and its aliases, then the docstring of the function that implements it (a private
  function, registered by name, rendered by mkdocstrings), formula included.
"""

from __future__ import annotations

import os
import re
import sys
from html import unescape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- smithing-cli-reference -->"
INIT_MARKER = "<!-- smithing-init-rules -->"
#: what pymdownx.arithmatex (generic mode) emits for inline and display math
_MATH = re.compile(
    r'<span class="arithmatex">\\\((?P<inline>.*?)\\\)</span>'
    r'|<div class="arithmatex">\\\[(?P<block>.*?)\\\]</div>',
    re.S,
)

#: a TeX command latex2mathml does not know, left in its output as the text of a token
_UNKNOWN_COMMAND = re.compile(r">(\\[A-Za-z]+)<")


def _cli_reference() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps its help to the terminal width
    sys.path.insert(0, str(ROOT / "src"))
    from smithing.cli import VERBS, build_parser

    parser = build_parser()
    parser.prog = "smithing"
    sub = next(a for a in parser._actions if a.dest == "command")
    out = ["## smithing", "", "```text", parser.format_help().rstrip(), "```", ""]
    for verb in VERBS:
        p = sub.choices[verb.NAME]
        out += [f"## smithing {verb.NAME}", "", verb.HELP[0].upper() + verb.HELP[1:] + ".", ""]
        out += ["```text", p.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def _init_rules() -> str:
    """A section per registered initializer: its name, call, aliases and its docstring."""
    import inspect

    sys.path.insert(0, str(ROOT / "src"))
    from smithing.init import ALIASES, INITIALIZERS

    out = []
    for name in INITIALIZERS.names():
        rule = INITIALIZERS.get(name)
        fn = rule.fn
        params = list(inspect.signature(fn).parameters.values())
        if rule.model_level:
            # fn(model, layers, *, generator, gain, bias, activation, **params)
            skip = {"model", "layers", "generator", "gain", "bias", "activation"}
            head = f'apply(model, "{name}"'
        else:  # fn(w, *, generator, gain, **params)
            skip = {"w", "generator", "gain"}
            head = f'initialize(weight, "{name}"'
        extra = [
            f"{p.name}={p.default!r}" if p.default is not p.empty else p.name
            for p in params
            if p.name not in skip and p.kind is not p.VAR_KEYWORD
        ]
        if rule.uses_gain:
            extra.insert(0, "gain=None")
        call = head + "".join(f", {e}" for e in extra) + ")"
        aliases = sorted(a for a, target in ALIASES.items() if target == name)
        out += [f"### `{name}`", "", f"`{call}`"]
        if aliases:
            out[-1] += " · aliases: " + ", ".join(f"`{a}`" for a in aliases)
        out += [
            "",
            f"::: {fn.__module__}.{fn.__qualname__}",
            "    options:",
            "      show_root_heading: false",
            "      show_root_toc_entry: false",
            "      heading_level: 4",
            "",
        ]
    return "\n".join(out)


def render_math(html: str, where: str = "") -> str:
    """Every arithmatex span / div of ``html`` as MathML (inline or display)."""
    from latex2mathml.converter import convert

    def one(match: re.Match) -> str:
        inline = match.group("inline") is not None
        tex = unescape(match.group("inline") if inline else match.group("block")).strip()
        try:
            mathml = convert(tex, display="inline" if inline else "block")
        except Exception as exc:  # latex2mathml raises its own exception classes
            raise ValueError(f"{where}: cannot render the formula {tex!r}: {exc}") from exc
        unknown = _UNKNOWN_COMMAND.search(mathml)  # latex2mathml keeps a command it lacks as text
        if unknown:
            raise ValueError(
                f"{where}: cannot render the formula {tex!r}: unknown command {unknown.group(1)}"
            )
        return mathml if inline else f'<div class="math-display">{mathml}</div>'

    return _MATH.sub(one, html)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, _cli_reference())
    if INIT_MARKER in markdown:
        markdown = markdown.replace(INIT_MARKER, _init_rules())
    return markdown


def on_page_content(html: str, page, config, files) -> str:
    return render_math(html, where=page.file.src_uri)
