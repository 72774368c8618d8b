"""Large base64 bodies kept out of the email package while a message is parsed.

The email package holds a body as text: a 25 MB attachment becomes 450,000 line
strings, then one 34 MB string, then mail-parser's copy of it and the decoded bytes,
several copies of the message at once.  So, before parsing, every run of at least
``MIN_RUN`` bytes of lines of the base64 alphabet (RFC 4648 §4) is replaced by one
token line, and the file part whose body it was is decoded straight from the raw
bytes (``Elided.encoded``).

The replacement cannot change the MIME structure the parser finds: such lines are
not boundary delimiters (those start with ``--``, RFC 2046 §5.1.1), header fields
(no colon, RFC 5322 §2.2), continuations (no leading white space) or blank, and
neither is the token line.  A run anywhere but in a base64 file part (a text body,
a preamble, a forwarded message that mail-parser re-renders) would be read as text,
so then the message is parsed whole instead (``Elided.only_in_files``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from email.message import Message

# Bytes.  The parser walks a body line by line in Python (~1 µs a 76-octet line):
# on the bench corpus (10 % of mails with 50–500 KB files) 16 KB instead of 1 MB cut
# parsing by a quarter (bench/RESULTS.md, ninth round); 4 and 8 KB did no better.
MIN_RUN = 1 << 14
# Whole lines of the base64 alphabet, one after the other (possessive: nothing to
# backtrack into, so a run of any length is matched in constant memory).
_RUN = re.compile(rb"(?m)^(?:[A-Za-z0-9+/=]++\r?\n)++")


@dataclass
class Elided:
    """The runs taken out of ``raw``: token number -> (start, stop) of the run in
    ``raw``, its last line ending left in place."""

    raw: bytes
    prefix: str = ""
    runs: list[tuple[int, int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.runs)

    def _tokens(self) -> re.Pattern:
        return re.compile(re.escape(self.prefix) + r"x(\d+)x")

    def token(self, start: int, stop: int) -> bytes:
        """Record a run; the token line's text that stands for it."""
        self.runs.append((start, stop))
        return f"{self.prefix}x{len(self.runs) - 1}x".encode()

    def only_in_files(self, msg: Message) -> bool:
        """True when every token of the parsed skeleton ``msg`` is in the body of a
        base64 file part, which only ``encoded`` reads: a leaf that is no text body
        (mail-parser sorts by subtype), with no forwarded container around it."""
        found = 0
        for part in msg.walk():
            if part.is_multipart():
                if part.get_content_disposition() == "attachment" or self.prefix in "".join(
                        str(t) for t in (part.preamble, part.epilogue) if t):
                    return False
                continue
            payload = part.get_payload()
            if isinstance(payload, str) and self.prefix in payload:
                if not (_base64_file(part) and payload.isascii()):
                    return False
                found += len(self._tokens().findall(payload))
        return found == len(self.runs)

    def encoded(self, payload: str) -> str | memoryview:
        """The base64 text of a file part as the raw bytes it stands for (no copy),
        or ``payload`` itself when it holds no token.  The payload is one stretch
        of the skeleton, so the text around its tokens is the raw text around the
        runs."""
        found = list(self._tokens().finditer(payload)) if self else []
        if not found:
            return payload
        first, last = self.runs[int(found[0][1])], self.runs[int(found[-1][1])]
        start, stop = first[0] - found[0].start(), last[1] + len(payload) - found[-1].end()
        elided = sum(stop - start for start, stop in (self.runs[int(m[1])] for m in found))
        if stop - start != len(payload) + elided - sum(len(m[0]) for m in found):
            raise ValueError("elided payload is not one stretch of the message")
        return memoryview(self.raw)[start:stop]


def split(raw: bytes) -> tuple[bytes, Elided]:
    """``raw`` with its long base64 runs replaced by tokens, and what was taken out."""
    elided = Elided(raw)
    if len(raw) < MIN_RUN:
        return raw, elided
    elided.prefix = _fresh_prefix(raw)
    view, pieces, last = memoryview(raw), [], 0
    for match in _RUN.finditer(raw):
        start, end = match.span()
        if end - start < MIN_RUN:
            continue
        stop = end - (2 if raw[end - 2:end] == b"\r\n" else 1)
        pieces += [view[last:start], elided.token(start, stop)]
        last = stop
    if not elided:
        return raw, elided
    pieces.append(view[last:])
    return b"".join(pieces), elided


def _fresh_prefix(raw: bytes) -> str:
    """A token prefix of the base64 alphabet that ``raw`` does not contain."""
    while (prefix := f"mailgateElided{secrets.token_hex(8)}").encode() in raw:
        continue
    return prefix


def _base64_file(part: Message) -> bool:
    """A part that mail-parser lists as a base64 attachment and never as text."""
    encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
    return (bool(part.get_filename()) and encoding == "base64"
            and part.get_content_subtype() not in ("plain", "html"))
