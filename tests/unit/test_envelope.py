"""MAIL FROM / RCPT TO paths: the fast common case (inbound/envelope.py) gives what
aiosmtpd's own parser gives, for every argument, and is taken for the usual ones; an
address with a control character is malformed."""

from __future__ import annotations

import re

from aiosmtpd.smtp import SMTP
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailgate.inbound.envelope import FastPaths

CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # RFC 5321 §4.1.2: in no path, quoted or not


class Aiosmtpd:
    """aiosmtpd's ``_getaddr`` on its own, counting the arguments it was given."""

    local_part_limit = 0

    def __init__(self):
        self.asked = 0

    def _getaddr(self, arg):
        self.asked += 1
        return SMTP._getaddr(self, arg)


class Fast(FastPaths, Aiosmtpd):
    """The listener's: the fast case first, aiosmtpd's for the rest."""


PIECES = st.sampled_from(["<", ">", "@", ".", "a", "Z", "0", "-", "_", "+", "'", '"', " ",
                          "\t", "\x00", "(", ")", "[", "]", ":", ",", "\\", "é", "SIZE=10",
                          "BODY=8BITMIME", "example.com", "x.y"])


@settings(max_examples=3000)
@given(st.lists(PIECES, max_size=14).map("".join), st.sampled_from([0, 3, 64]))
@example("<a.b@example.com> SIZE=10", 0)
@example("<a.b@example.com>  (comment) SIZE=10", 0)
@example("<.a@example.com>", 0)
@example("<a..b@example.com>", 0)
@example("<a@b.>", 0)
@example("<a@-b.com>", 0)
@example("<abcd@example.com>", 3)
@example(" <a@example.com>\t", 0)
def test_every_argument_parses_as_aiosmtpd_parses_it(arg, limit):
    fast, plain = Fast(), Aiosmtpd()
    fast.local_part_limit = plain.local_part_limit = limit
    expected = outcome(plain, arg)
    if isinstance(expected, tuple) and expected[0] and CONTROL.search(expected[0]):
        expected = (None, None)
    assert outcome(fast, arg) == expected


def test_an_address_with_a_control_character_is_malformed():
    fast = Fast()
    for arg in ['<"a\x00b"@example.net>', '<"a\tb"@example.net> SIZE=10', "<a\x00b@example.net>",
                "<a@[127.0.0.1\x7f]>"]:
        assert fast._getaddr(arg) == (None, None), arg
    assert fast._getaddr('<"a b"@example.net>') == ('"a b"@example.net', "")


def outcome(parser, arg):
    """What ``_getaddr`` returns, or the class of what it raises (aiosmtpd's own parser
    raises IndexError on a lone ``<``; its session answers that with a 500)."""
    try:
        return parser._getaddr(arg)
    except Exception as exc:  # noqa: BLE001 - the comparison is the point
        return type(exc)


def test_the_usual_paths_do_not_go_to_the_slow_parser():
    fast = Fast()
    usual = ["<anna.rossi@rossi-srl.it>", "<hd@example.com> SIZE=40123 BODY=8BITMIME",
             "<bounce+x=y@lists.example.org>", "<O'Brien@example.ie>"]
    assert [fast._getaddr(arg)[0] for arg in usual] == [
        "anna.rossi@rossi-srl.it", "hd@example.com", "bounce+x=y@lists.example.org",
        "O'Brien@example.ie"]
    assert fast.asked == 0
