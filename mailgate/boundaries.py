"""Multipart boundary lines matched without a regular expression compiled per part.

The email package's feed parser compiles a pattern for each multipart it reads
(``email/feedparser.py``, ``_parsegen``): ``--`` and the boundary, escaped, then the
close-delimiter's ``--``, white space and the line end (RFC 2046 §5.1.1).  Every
message has boundaries of its own, so ``re``'s cache never holds them: on this
machine a compile took about 95 µs, a few per cent of processing a mail.  The feed
parser reaches ``re`` through its module's global; ``install`` gives it one whose
``compile`` answers that one pattern with ``BoundaryMatcher``, which matches the
same lines, and hands every other pattern to ``re``.
"""

from __future__ import annotations

import re
import types
from email import feedparser

_HEAD = "(?P<sep>"
_TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_REST = re.compile(_TAIL[1:])
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


class BoundaryMatcher:
    """``match(line)`` as the feed parser's per-boundary pattern: a line that starts
    with ``separator``, then the rest of the pattern, compiled once for all."""

    def __init__(self, separator: str):
        self.separator = separator

    def match(self, line: str):
        """The match of ``line`` (groups ``end``, ``ws`` and ``linesep``), or None."""
        if not line.startswith(self.separator):
            return None
        return _REST.match(line, len(self.separator))


def compile_pattern(pattern, flags=0):
    """``re.compile``, except for the feed parser's boundary pattern."""
    if (not flags and isinstance(pattern, str) and pattern.startswith(_HEAD)
            and pattern.endswith(_TAIL)):
        # re.escape puts a backslash before each special character, and only that.
        return BoundaryMatcher(_ESCAPED.sub(r"\1", pattern[len(_HEAD):-len(_TAIL)]))
    return re.compile(pattern, flags)


def install() -> None:
    """Have the feed parser compile its boundary patterns with ``compile_pattern``."""
    if getattr(feedparser.re, "compile", None) is not compile_pattern:
        shim = types.ModuleType("re")
        shim.__dict__.update(re.__dict__)
        shim.compile = compile_pattern
        feedparser.re = shim
