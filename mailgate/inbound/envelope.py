"""The addresses of MAIL FROM and RCPT TO, their common form parsed without the
``email`` package.

aiosmtpd parses each path with ``email._header_value_parser`` (a token tree for
``<a@b.example>``) and defines a ``typing.Protocol`` class on every call: a seventh of
the listener's CPU under load (bench/RESULTS.md).  Nearly every path is an angle
address of a dot-atom local part (RFC 5321 §4.1.2 ``Dot-string``) at a domain name,
whose address is its text as written; those are taken here, and everything else
(quoted local parts, address literals, comments, source routes, bare addresses, the
null path) goes to aiosmtpd as before.  An address with a control character in it is
malformed (RFC 5321 §4.1.2: not even a quoted local part holds one), which aiosmtpd
does not check: it is answered ``553`` here, before a NUL reaches the spool, which
PostgreSQL cannot store (the whole group commit would fail with it).
"""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"  # RFC 5322 §3.2.3
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"  # RFC 5321 §4.1.2 sub-domain
_PATH = re.compile(
    rf"[ \t]*<((?:{_ATEXT}(?:\.{_ATEXT})*)@{_LABEL}(?:\.{_LABEL})*)>[ \t]*([^ \t(].*)?",
    re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FastPaths:
    """Mixed into aiosmtpd's ``SMTP``: its ``_getaddr`` with a fast common case."""

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """``(address, rest)`` of a MAIL or RCPT argument, as aiosmtpd returns them,
        but ``(None, None)`` (malformed) for an address with a control character."""
        found = _PATH.fullmatch(arg)
        if found is None:
            address, rest = super()._getaddr(arg)
            if address and _CONTROL.search(address):
                return None, None  # aiosmtpd's "553 5.1.3 Error: malformed address"
            return address, rest
        address = found.group(1)
        if self.local_part_limit and address.index("@") > self.local_part_limit:
            return None, None
        return address, found.group(2) or ""
