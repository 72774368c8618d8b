"""boundaries: the feed parser's boundary lines matched as its own pattern matches them."""

from __future__ import annotations

import re

import pytest

from mailgate import boundaries

SEPARATORS = ["--simple", "--=_Part_1.2+3(x)?*[y]", "--a\\b c", "--é-ü", "--"]
LINES = ["{s}", "{s}\n", "{s}\r\n", "{s}\r", "{s}--", "{s}--\r\n", "{s}  \t\n", "{s}-- \n",
         "{s}x\n", " {s}\n", "{s}\n\n", "{s}-\n", "", "\n", "text {s}\n"]


def stdlib_pattern(separator: str) -> re.Pattern:
    """The pattern email/feedparser.py compiles for ``separator``."""
    return re.compile("(?P<sep>" + re.escape(separator)
                      + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$")


@pytest.mark.parametrize("separator", SEPARATORS)
def test_the_same_lines_match_with_the_same_groups(separator):
    ours, theirs = boundaries.compile_pattern(stdlib_pattern(separator).pattern), \
        stdlib_pattern(separator)
    assert isinstance(ours, boundaries.BoundaryMatcher) and ours.separator == separator
    for line in (template.format(s=separator) for template in LINES):
        mine, stdlib = ours.match(line), theirs.match(line)
        assert (mine is None) == (stdlib is None), line
        if stdlib is not None:
            for group in ("end", "ws", "linesep"):
                assert mine.group(group) == stdlib.group(group), (line, group)


def test_other_patterns_are_compiled_by_re():
    assert boundaries.compile_pattern(r"a+b").match("aab")
    assert boundaries.compile_pattern("(?P<sep>x)", re.I).pattern == "(?P<sep>x)"
