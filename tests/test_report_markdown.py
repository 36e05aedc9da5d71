"""The report's tiny markdown: wrapped lines are one paragraph, "- " lines a list."""

from __future__ import annotations

from smithing.report.html import _markdownish

TEXT = """
Qualitative findings only; no numbers
are claimed.
- Kingma & Ba, "Adam", ICLR 2015,
  section 6.2: Adam falls fastest.
- Sutskever et al. 2013: Nesterov.

| method | error |
|---|---|
| adam | 1.5 % |
After the table.
"""


def test_wrapped_lines_lists_and_tables():
    out = _markdownish(TEXT)
    assert out.splitlines() == [
        "<p>Qualitative findings only; no numbers are claimed.</p>",
        "<ul><li>Kingma &amp; Ba, &quot;Adam&quot;, ICLR 2015, section 6.2: Adam falls fastest."
        "</li><li>Sutskever et al. 2013: Nesterov.</li></ul>",
        "<table><tr><th>method</th><th>error</th></tr><tr><td>adam</td><td>1.5 %</td></tr></table>",
        "<p>After the table.</p>",
    ]


def test_one_line_paragraphs_stay_as_they_were():
    assert _markdownish("one\n\ntwo") == "<p>one</p>\n<p>two</p>"
