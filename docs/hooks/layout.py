"""MkDocs hook: markup for wide tables and long inline code, done at build time (no script).

* Every ``<table>`` is wrapped in ``<div class="table-wrap">``; ``docs/css/extra.css`` makes
  that box scroll sideways, so a table wider than the text column scrolls instead of being
  clipped by the theme's ``overflow-x: hidden``.
* Inline code never breaks inside a token (``--half-wave`` stays whole): the CSS gives
  ``code`` ``white-space: nowrap``.  So that a long command in a narrow table cell can still
  wrap *between* its words, inline code that holds spaces is split into
  ``<span class="tok">`` words (class ``code.wrap``); the text, and so copy and paste, is
  unchanged.
"""
from __future__ import annotations

import re

_PRE = re.compile(r"(<pre\b.*?</pre>)", re.S)
_TABLE_OPEN = re.compile(r"<table\b")
_TABLE_CLOSE = re.compile(r"</table>")
_CODE = re.compile(r"<code>([^<]*\s[^<]*)</code>")
_WORD = re.compile(r"(\S+)")


def _tokens(match: re.Match) -> str:
    # a code span continued on the next source line: the line end is a space (CommonMark),
    # not the forced line break it would be under white-space: pre-wrap
    inner = re.sub(r"[ \t]*\n\s*", " ", match.group(1))
    return '<code class="wrap">' + _WORD.sub(r'<span class="tok">\1</span>', inner) + "</code>"


def on_page_content(html, page, config, files):
    parts = _PRE.split(html)
    for i in range(0, len(parts), 2):           # even parts are outside <pre> blocks
        part = parts[i]
        part = _TABLE_OPEN.sub('<div class="table-wrap"><table', part)
        part = _TABLE_CLOSE.sub("</table></div>", part)
        part = _CODE.sub(_tokens, part)
        parts[i] = part
    return "".join(parts)
