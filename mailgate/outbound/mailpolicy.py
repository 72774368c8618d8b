"""The email policy our outbound messages are built with: ``email.policy.default``
with a header registry that makes each header class once.

The standard registry builds a new class with ``type()`` on every header it parses
(``HeaderRegistry.__getitem__``); with some twenty headers on each of two mails per
message that was the largest single cost of composing in the profile.  The classes
depend only on the header's name, so making each once changes nothing else.
"""

from __future__ import annotations

import email.policy
from email.headerregistry import BaseHeader, HeaderRegistry


class CachedRegistry(HeaderRegistry):
    """A HeaderRegistry that remembers the class it made for each header name."""

    def __init__(self):
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        """The header class for ``name`` (made on first use)."""
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


POLICY = email.policy.default.clone(header_factory=CachedRegistry())
SMTP = POLICY.clone(linesep="\r\n")  # as email.policy.SMTP: CRLF line ends
