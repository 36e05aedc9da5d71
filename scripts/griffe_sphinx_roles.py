"""griffe extensions for the documentation site: Sphinx roles in docstrings as code, and
grouped parameters (``x, y: ...``) as one entry each.

The docstrings cross-reference with Sphinx roles (``:func:`~smithing.train.fit```), which
Markdown would show verbatim. This turns each role into inline code (``fit``, the last
component when the target starts with ``~``), so the references read as names.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(
    r":(?:func|class|mod|meth|attr|data|exc|obj|py:\w+):`(~?)([^`<]+?)(?:\s*<[^>]*>)?`"
)


def _code(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj, **kwargs) -> None:  # every module, class, function, attribute
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_code, obj.docstring.value)

    def on_package(self, *, pkg, **kwargs) -> None:  # the root package is not an "object" event
        self.on_object(obj=pkg)


# --------------------------------------------------------------- grouped parameters

SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes):\s*$")
GROUP = re.compile(r"^(\s+)((?:\*{0,2}[A-Za-z_]\w*)(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)+)\s*:(.*)$")


def expand_groups(text: str) -> str:
    """One entry per parameter in the Args / Attributes sections of a Google docstring.

    The project's docstrings group parameters that share a description (``x, y: inputs and
    targets``), as numpydoc allows; Google style (griffe's parser) takes one name per entry, so
    each name of a group becomes its own entry with the group's description. Then griffe can
    check every documented name against the signature (``warn_unknown_params``).
    """
    lines = text.splitlines()
    out: list[str] = []
    section_indent: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        header = SECTION.match(line)
        if header:
            section_indent = len(header.group(1))
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        if section_indent is not None and line.strip() and indent <= section_indent:
            section_indent = None  # the section ended
        group = GROUP.match(line) if section_indent is not None else None
        if group is None:
            out.append(line)
            i += 1
            continue
        item_indent, names, first = group.group(1), group.group(2), group.group(3)
        body = []
        i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(item_indent)
        ):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():  # blank lines after the item are not its own
            body.pop()
            i -= 1
        for name in (n.strip() for n in names.split(",")):
            out.append(f"{item_indent}{name}:{first}")
            out.extend(body)
    return "\n".join(out)


class GroupedParameters(griffe.Extension):
    def on_object(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = expand_groups(obj.docstring.value)

    def on_package(self, *, pkg, **kwargs) -> None:
        self.on_object(obj=pkg)
