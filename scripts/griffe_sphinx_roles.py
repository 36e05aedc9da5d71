"""A griffe extension for the documentation site: Sphinx roles in docstrings as code.

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
