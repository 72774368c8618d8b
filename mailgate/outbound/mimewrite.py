"""Write outbound MIME messages straight to bytes.

Our outbound mails all have the same few shapes (text, text+HTML, and the sales
forward with the original attached), so they are written here as CRLF bytes instead
of being built as ``EmailMessage`` objects: the modern email policy parses every
header it is given back into a tree and folds it again on output, which was a third
of the pipeline's time.  Non-ASCII header text is written as RFC 2047 encoded words
here too (``email.header.Header`` took a tenth of a millisecond a subject, a quarter
of composing); long ASCII headers are still folded by ``Header``.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from email.header import Header

CRLF = b"\r\n"
MAX_LINE = 998  # RFC 5322 §2.1.1: octets per line, without the CRLF
FOLD_AT = 76  # RFC 5322 §2.1.1 asks for 78; RFC 2047 §2 words end there too
# RFC 5322 §3.2.3 specials: a display name with one of these is quoted.
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
WORD_MAX = 75  # RFC 2047 §2: characters of an encoded word
_WORD_MIN = 16  # a first word squeezed shorter than this would carry almost nothing
_WORD = "=?utf-8?b?{}?="
_LINE_ENDS = re.compile(r"\r\n|\r|\n")


def header(name: str, value: str) -> bytes:
    """``Name: value`` folded to ``FOLD_AT`` at white space; a value with non-ASCII
    characters as RFC 2047 encoded words (UTF-8).  The value must be one line already
    (``compose.one_line``)."""
    if not value.isascii():
        return f"{name}: {encoded_words(value, FOLD_AT - len(name) - 2)}".encode() + CRLF
    if len(name) + 2 + len(value) <= FOLD_AT:
        # Nothing to fold or encode (most of our headers: Date, Message-ID, X-Loop…);
        # ``Header`` would return it unchanged, at a tenth of a millisecond a header.
        return f"{name}: {value}".encode() + CRLF
    folded = Header(value, "us-ascii", maxlinelen=FOLD_AT, header_name=name,
                    continuation_ws=" ").encode(splitchars=" ", linesep="\r\n")
    return f"{name}: {folded}".encode() + CRLF


def encoded_words(text: str, room: int = WORD_MAX) -> str:
    """``text`` as UTF-8 "B" encoded words (RFC 2047 §4.1) of at most ``WORD_MAX``
    characters (§2), the first at most ``room`` (what is left of its line), folded
    with CRLF and a space between them.  A character is never split between two
    words (§5).  A decoder drops the folding white space between encoded words
    (§6.2), so the text comes back as it was, its own spaces included."""
    words, chunk, size = [], [], 0
    fits = _payload(min(max(room, _WORD_MIN), WORD_MAX))
    for char in text:
        octets = len(char.encode("utf-8", "surrogatepass"))
        if chunk and size + octets > fits:
            words.append(_word(chunk))
            chunk, size, fits = [], 0, _payload(WORD_MAX)
        chunk.append(char)
        size += octets
    words.append(_word(chunk))
    return "\r\n ".join(words)


def _payload(length: int) -> int:
    """Octets of text that fit in an encoded word of ``length`` characters."""
    return (length - len(_WORD.format(""))) // 4 * 3


def _word(chars: list[str]) -> str:
    text = "".join(chars).encode("utf-8", "replace")
    return _WORD.format(base64.b64encode(text).decode("ascii"))


def mailbox(name: str, addr: str) -> str:
    """An RFC 5322 name-addr: the display name quoted (§3.2.4) or RFC 2047-encoded.

    The address itself is written as it is: an RFC 6532 address with a UTF-8 local
    part has no ASCII form, and encoded words are not allowed in an addr-spec.
    """
    if not name:
        return addr
    if not name.isascii():
        shown = encoded_words(name, FOLD_AT - len("From: "))
    elif _SPECIALS.search(name):
        shown = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        shown = name
    return f"{shown} <{addr}>"


def address_header(name: str, display: str, addr: str) -> bytes:
    """An address header of one mailbox; UTF-8 only where RFC 6532 needs it."""
    return f"{name}: {mailbox(display, addr)}".encode() + CRLF


def text_part(subtype: str, text: str) -> bytes:
    """A ``text/<subtype>`` UTF-8 part, headers and body: 7bit when the text is ASCII
    in lines that fit (RFC 5322 §2.1.1), quoted-printable (RFC 2045 §6.7) otherwise."""
    lines = _LINE_ENDS.split(text)
    if text.isascii() and max(map(len, lines)) <= MAX_LINE:
        cte, body = "7bit", "\r\n".join(lines).encode("ascii")
    else:
        encoded = binascii.b2a_qp("\n".join(lines).encode("utf-8", "replace"))
        cte, body = "quoted-printable", encoded.replace(b"\n", CRLF)
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode() + body


def rfc822_part(raw: bytes) -> bytes:
    """A received message as a ``message/rfc822`` part (RFC 2046 §5.2.1), as it arrived.

    Such a part may not be encoded (7bit, 8bit or binary only), so a message that is
    not valid 8bit text (NUL, a bare CR, a line over 998 octets) goes as a base64
    ``application/octet-stream`` file instead; either way nothing of it is lost.
    """
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    bare_cr = raw.count(b"\r") != raw.count(b"\r\n")
    if b"\0" not in raw and not bare_cr and max(map(len, lines)) <= MAX_LINE:
        cte = "7bit" if raw.isascii() else "8bit"
        return (b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n"
                b"Content-Transfer-Encoding: " + cte.encode() + CRLF + CRLF + CRLF.join(lines))
    encoded = base64.encodebytes(raw).replace(b"\n", CRLF)
    return (b"Content-Type: application/octet-stream\r\n"
            b'Content-Disposition: attachment; filename="original.eml"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded)


def multipart(subtype: str, parts: list[bytes]) -> bytes:
    """A ``multipart/<subtype>`` entity (RFC 2046 §5.1) of ``parts``, with a boundary
    that none of them contains."""
    boundary = f"=_mg_{secrets.token_hex(12)}"
    while any(boundary.encode() in part for part in parts):
        boundary = f"=_mg_{secrets.token_hex(12)}"
    delimiter = b"--" + boundary.encode()
    body = b"".join(delimiter + CRLF + part + CRLF for part in parts) + delimiter + b"--" + CRLF
    return (f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n').encode() + body


def message(headers: list[bytes], entity: bytes) -> bytes:
    """The whole message: ``headers``, MIME-Version (RFC 2045 §4), and the entity (its
    own Content-* headers, an empty line, its body)."""
    return b"".join(headers) + b"MIME-Version: 1.0\r\n" + entity
