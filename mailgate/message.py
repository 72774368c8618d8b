"""Parse once: raw bytes to a ``ParsedMail`` that every later step reads.

mail-parser does the MIME walk and decoding; the stdlib decodes the headers we rely
on, because mail-parser keeps only the last of repeated headers.  Broken MIME, unknown
charsets and garbage headers degrade to replacement characters and empty fields;
``parse`` never raises on content (a message that mail-parser itself cannot walk falls
back to the stdlib walk).
"""

from __future__ import annotations

import binascii
import email
import email.policy
import hashlib
import itertools
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.feedparser import BytesFeedParser
from email.header import decode_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

import charset_normalizer
import mailparser
from inscriptis import get_text

from mailgate import bigparts, boundaries

# mail-parser logs a warning for every content type it does not render as text.
logging.getLogger("mailparser").setLevel(logging.ERROR)
boundaries.install()  # no pattern compiled for each multipart the parser reads

MSGID_RE = re.compile(r"<[^<>\s]+>")
# One plain addr-spec of dot-atoms (RFC 5322 §3.4.1), as people and robots write them.
ADDRESS_RE = re.compile(r"[A-Za-z0-9_.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
# More parts than any mail client writes (100,000 is an attack): read by the stdlib walk.
MANY_PARTS = 1000
REPLACEMENT = "\ufffd"
FEED = 1 << 16  # bytes handed to the parser at a time
# What undeclared 8-bit mail of our customers (en, it, hu, ru, de) is written in.  Left
# open, detection on a short text picks Asian code pages for KOI8-R.
LIKELY_CHARSETS = ["utf_8", "cp1252", "iso8859_15", "iso8859_2", "cp1250", "koi8_r",
                   "cp1251", "iso8859_5", "mac_cyrillic"]


@dataclass
class AttachmentInfo:
    """One attachment: name, type, size, digest and (capped by the caller) bytes."""

    filename: str
    content_type: str
    size: int
    sha256: str
    data: bytes


@dataclass
class ParsedMail:
    """What the pipeline needs of a message, decoded."""

    from_addr: str = ""
    from_name: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    subject: str = ""
    message_id: str | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    date: datetime | None = None
    text: str = ""
    html: str | None = None
    attachments: list[AttachmentInfo] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)
    content_type: str = "text/plain"

    def header(self, name: str) -> str:
        """The first value of header ``name`` (case-insensitive), or ``""``."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""


def parse(raw: bytes) -> ParsedMail:
    """Decode ``raw`` into a ``ParsedMail``; never raises on malformed content."""
    return _without_nul(_decoded(raw))


def _decoded(raw: bytes) -> ParsedMail:
    # Large base64 file bodies stay out of the tree (bigparts.py) unless a run of
    # base64 lines sits where it would be read as text.
    skeleton, elided = bigparts.split(raw)
    try:
        msg = _tree(skeleton)
        if elided and not elided.only_in_files(msg):
            msg, elided = _tree(raw), bigparts.Elided(raw)
    except RecursionError:
        return _too_deep(raw)
    mail = _headers(msg)
    try:
        text_parts, html_parts, mail.attachments = _bodies(msg, elided)
    except RecursionError:
        return _too_deep(raw)
    mail.html = "\n".join(html_parts) if html_parts else None
    mail.text = "\n".join(text_parts) if text_parts else _html_to_text(mail.html)
    return mail


def _tree(raw: bytes) -> Message:
    """The compat32 tree of ``raw``, fed to the parser a piece at a time as the
    stdlib's own parser does; ``message_from_bytes`` would first decode the whole
    message into one string and copy that into a StringIO of four bytes a character."""
    parser = BytesFeedParser(policy=email.policy.compat32)
    for start in range(0, len(raw), FEED):
        parser.feed(raw[start:start + FEED])
    return parser.close()


def without_nul(text: str) -> str:
    """``text`` without NUL characters: RFC 5322 §2.2 and §3.5 exclude them from a
    message, and PostgreSQL cannot store them in a text column."""
    return text.replace("\x00", "")


def _without_nul(mail: ParsedMail) -> ParsedMail:
    """The mail with every NUL character removed from its decoded texts: NUL has no
    place in a message's text (RFC 5322 §2.2 and §3.5 exclude it) and PostgreSQL
    cannot store it in a text column."""
    def clean(value):
        if isinstance(value, str):
            return without_nul(value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {clean(k): clean(v) for k, v in value.items()}
        return value

    for name in ("from_addr", "from_name", "to", "cc", "reply_to", "subject", "message_id",
                 "in_reply_to", "references", "text", "html", "headers", "content_type"):
        setattr(mail, name, clean(getattr(mail, name)))
    for attachment in mail.attachments:
        attachment.filename = clean(attachment.filename)
        attachment.content_type = clean(attachment.content_type)
    return mail


def _bodies(msg: Message, elided: bigparts.Elided
            ) -> tuple[list[str], list[str], list[AttachmentInfo]]:
    """Texts, HTML texts and attachments as mail-parser finds them; the stdlib walk's
    where mail-parser fails, where a charset was wrong, and for a message of more than
    ``MANY_PARTS`` parts (mail-parser takes seconds per ten thousand parts).  The
    stdlib walk decodes every part itself, so it gets the tree without elisions."""
    if next(itertools.islice(msg.walk(), MANY_PARTS, None), None) is not None:
        return _walk(_tree(elided.raw) if elided else msg)
    try:
        # Our compat32 tree, the one mail-parser would build from the same bytes:
        # parsing once instead of twice.
        parsed = mailparser.MailParser(_body_headers_only(msg))
        texts, htmls = parsed.text_plain, parsed.text_html
        attachments = [_attachment(a, elided) for a in parsed.attachments]
    except Exception:  # noqa: BLE001 - mail-parser has its own bugs; degrade, never crash
        return _walk(_tree(elided.raw) if elided else msg)
    if any(REPLACEMENT in part for part in (*texts, *htmls)):
        # A missing or wrong charset: decode again, detecting what it really is.  Only
        # the texts are taken, and elided bodies are files, never texts: no re-parse.
        texts, htmls, _ = _walk(msg)
    return texts, htmls, attachments


def _body_headers_only(msg: Message) -> Message:
    """``msg`` without the top-level headers that do not describe its body (RFC 2045
    §9: ``Content-*``, and ``MIME-Version``), removed in place once ``_headers`` has
    read them.  mail-parser analyses every Received, address and Date header of the
    message it is given for diagnostics we do not use: that was over half its time."""
    for name in {n for n in msg if not n.lower().startswith(("content-", "mime-"))}:
        del msg[name]
    return msg


def _too_deep(raw: bytes) -> ParsedMail:
    """A message nested deeper than the parsers recurse (thousands of message/rfc822 or
    multipart levels, which no mail client writes): its headers, and its body as plain
    text, so that it still becomes an article a person can look at."""
    mail = _headers(BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw))
    end = _HEADER_END.search(raw)
    mail.text = decode_body(raw[end.end():], None) if end else ""
    return mail


def _headers(msg: Message) -> ParsedMail:
    headers: dict[str, list[str]] = {}
    raw: dict[str, list[str]] = {}
    # raw_items: compat32 would wrap 8-bit (raw UTF-8) values in a Header that prints
    # replacement characters; the raw value keeps the bytes for decode_text.
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), []).append(decode_text(value))
        raw.setdefault(name.lower(), []).append(str(value))
    mail = ParsedMail(headers=headers)
    # Addresses are split before RFC 2047 decoding (RFC 2047 §5: an encoded-word never
    # holds an address), or "=?utf-8?q?staff=40example.com?= <x@evil>" would pass for
    # staff@example.com.
    mail.from_name, mail.from_addr = _first_address(raw.get("from", []))
    mail.to = _addresses(raw.get("to", []))
    mail.cc = _addresses(raw.get("cc", []))
    mail.reply_to = _addresses(raw.get("reply-to", []))
    mail.subject = _one_line(mail.header("subject"))
    ids = MSGID_RE.findall(mail.header("message-id"))
    mail.message_id = ids[0] if ids else None
    mail.in_reply_to = MSGID_RE.findall(mail.header("in-reply-to"))
    mail.references = MSGID_RE.findall(" ".join(headers.get("references", [])))
    mail.date = _date(mail.header("date"))
    mail.content_type = (msg.get_content_type() or "text/plain").lower()
    return mail


def decode_text(value) -> str:
    """An RFC 2047 header value as text; undecodable bytes become U+FFFD.

    Each encoded word is decoded on its own with ``errors="replace"`` (an unknown
    charset falls back to UTF-8), so a broken word degrades instead of surviving as
    raw ``=?…?=`` text that a later step might decode again.
    """
    if not isinstance(value, str):
        value = str(value)
    if "=?" not in value:  # no encoded word: decode_header would hand it back whole
        return _without_surrogates(value)
    try:
        parts = decode_header(value)
    except Exception:  # noqa: BLE001 - malformed words: keep the text as it stands
        parts = [(value, None)]
    # decode_header hands back unencoded runs as raw-unicode-escape bytes (charset None).
    text = "".join(
        chunk if isinstance(chunk, str) else _text_of(chunk, charset or "raw-unicode-escape")
        for chunk, charset in parts
    )
    return _without_surrogates(text)


def _text_of(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _without_surrogates(text: str) -> str:
    """Raw 8-bit header bytes (surrogate escapes) read as UTF-8, else U+FFFD."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def _one_line(value: str) -> str:
    """Fold header continuations; a subject is one line however it arrived."""
    return " ".join(value.split())


def _first_address(values: list[str]) -> tuple[str, str]:
    pairs = getaddresses(values) if values else []
    for name, addr in pairs:
        if "@" in addr:
            return _one_line(decode_text(name)), _clean_address(addr)
    return "", _clean_address(parseaddr(values[0])[1]) if values else ""


def _clean_address(addr: str) -> str:
    """A lower-cased address; raw 8-bit bytes become U+FFFD rather than surrogates."""
    return _without_surrogates(addr.strip().lower())


def _addresses(values: list[str]) -> list[str]:
    seen: list[str] = []
    for _name, addr in getaddresses(values):
        addr = _clean_address(addr)
        if "@" in addr and addr not in seen:
            seen.append(addr)
    return seen


def _date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        return None


def _attachment(info: dict, elided: bigparts.Elided) -> AttachmentInfo:
    # An elided body comes back as the raw bytes it stands for; a2b_base64 is what
    # base64.b64decode runs, without its copy of the text as bytes first.
    payload = elided.encoded(info.get("payload") or "")
    if info.get("binary"):
        try:
            data = binascii.a2b_base64(payload)
        except ValueError:
            data = _as_bytes(payload)
    else:
        data = _as_bytes(payload)
    return AttachmentInfo(
        filename=_safe_name(info.get("filename") or ""),
        content_type=(info.get("mail_content_type") or "application/octet-stream").lower(),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )


def _as_bytes(payload: str | memoryview) -> bytes:
    """A payload kept as it is: text as UTF-8, raw bytes as they are."""
    return payload.encode("utf-8", "replace") if isinstance(payload, str) else bytes(payload)


def _safe_name(name: str) -> str:
    """A file name without folders or control characters, fit to show or store."""
    name = decode_text(name).replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable()).strip(". ")[:200]


def _walk(msg: Message) -> tuple[list[str], list[str], list[AttachmentInfo]]:
    """The stdlib walk: text and HTML parts decoded, any other leaf (or a part with a
    file name) an attachment."""
    texts, htmls, attachments = [], [], []
    for part in msg.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        payload = part.get_payload(decode=True) or b""
        if kind in ("text/plain", "text/html") and not part.get_filename():
            body = decode_body(payload, part.get_content_charset())
            (texts if kind == "text/plain" else htmls).append(body)
        else:
            attachments.append(AttachmentInfo(
                filename=_safe_name(part.get_filename() or ""), content_type=kind,
                size=len(payload), sha256=hashlib.sha256(payload).hexdigest(), data=payload))
    return texts, htmls, attachments


def decode_body(data: bytes, declared: str | None) -> str:
    """Body bytes as text: the declared charset if it decodes them, else UTF-8, else
    the charset detected from the bytes, else replacement characters."""
    for charset in (declared, "utf-8"):
        if charset:
            try:
                return data.decode(charset)
            except (LookupError, UnicodeDecodeError):
                continue
    best = charset_normalizer.from_bytes(data, cp_isolation=LIKELY_CHARSETS).best()
    if best is not None:
        return str(best)
    return data.decode("utf-8", "replace")


def _html_to_text(html: str | None) -> str:
    """HTML-only mail becomes readable text (inscriptis keeps lists and tables)."""
    if not html:
        return ""
    try:
        return get_text(html).strip()
    except Exception:  # noqa: BLE001 - pathological HTML must not stop the mail
        return re.sub(r"<[^>]*>", " ", html)
