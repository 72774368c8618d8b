"""Our Message-IDs: ``<N.TOKEN.mgRANDOM@domain>`` (SPEC §3 step 4).

A ticket's mails carry its number and its secret token, so a reply that names one of
them in In-Reply-To/References proves it answers a mail we sent about that ticket;
guessing a ticket number is not enough to forge one.  Mails about no ticket use
``nt`` in place of the number and token.
"""

from __future__ import annotations

import re
import secrets

_OURS = re.compile(r"^(?:(\d+)\.([0-9a-f]+)|nt)\.mg[0-9a-f]+$")


def new_token() -> str:
    """A fresh per-ticket token: 64 random bits, hex."""
    return secrets.token_hex(8)


def make(domain: str, number: int | None = None, token: str | None = None) -> str:
    """A new unique Message-ID in ``domain``, tied to a ticket when one is given."""
    unique = secrets.token_hex(6)
    if number is None or token is None:
        return f"<nt.mg{unique}@{domain}>"
    return f"<{number}.{token}.mg{unique}@{domain}>"


def parse(message_id: str, domain: str) -> tuple[int, str] | None:
    """``(number, token)`` when ``message_id`` is one of ours about a ticket."""
    match = _match(message_id, domain)
    if match and match.group(1):
        return int(match.group(1)), match.group(2)
    return None


def is_ours(message_id: str, domain: str) -> bool:
    """True for any Message-ID that mailgate made in ``domain``."""
    return _match(message_id, domain) is not None


def _match(message_id: str, domain: str) -> re.Match | None:
    local, _, dom = message_id.strip().strip("<>").lower().rpartition("@")
    if dom != domain.lower():
        return None
    return _OURS.match(local)
