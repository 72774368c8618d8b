"""Render a template and build the outbound message with its threading headers.

Templates are ``templates/<lang>/<name>.subject.j2``, ``.txt.j2`` and optional
``.html.j2``, falling back to ``en``; every mail is multipart/alternative, its HTML
part made from the text where the template has none.
Customer text only ever enters as data in the context, never as template source,
so ``{{ … }}`` in a customer's mail is shown as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from html import escape
from pathlib import Path

import jinja2

from mailgate.outbound.mailpolicy import POLICY

FALLBACK_LANGUAGE = "en"


@dataclass
class Rendered:
    """A rendered template: one-line subject, text, optional HTML."""

    subject: str
    text: str
    html: str | None


class Templates:
    """The template folder, rendered with strict undefined variables."""

    def __init__(self, root: Path):
        self.root = root
        loader = jinja2.FileSystemLoader(str(root))
        common = dict(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        self._text = jinja2.Environment(autoescape=False, **common)  # noqa: S701 - plain text
        self._html = jinja2.Environment(autoescape=True, **common)

    def exists(self, lang: str, name: str) -> bool:
        """True when ``name`` has its subject and text templates in ``lang``."""
        parts = ("subject", "txt")
        return all((self.root / lang / f"{name}.{part}.j2").is_file() for part in parts)

    def render(self, name: str, lang: str, context: dict) -> Rendered:
        """Render ``name`` in ``lang`` (or the fallback language) with ``context``."""
        if not self.exists(lang, name):
            lang = FALLBACK_LANGUAGE
        subject = self._text.get_template(f"{lang}/{name}.subject.j2").render(context)
        text = self._text.get_template(f"{lang}/{name}.txt.j2").render(context)
        if (self.root / lang / f"{name}.html.j2").is_file():
            html = self._html.get_template(f"{lang}/{name}.html.j2").render(context)
        else:
            html = text_to_html(text, lang)
        return Rendered(one_line(subject), text, html)


def text_to_html(text: str, lang: str) -> str:
    """The HTML part of a template that has only text: its paragraphs and lines,
    escaped, so mail clients that prefer HTML show the same words."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    body = "\n".join("<p>" + "<br>\n".join(escape(line) for line in p.splitlines()) + "</p>"
                     for p in paragraphs)
    return (f'<!DOCTYPE html>\n<html lang="{escape(lang)}">\n<head><meta charset="utf-8">'
            f"</head>\n<body>\n{body}\n</body>\n</html>\n")


def one_line(value: str) -> str:
    """A header value that stays one header with the text it shows.

    CR, LF and runs of white space collapse; other control characters and lone
    surrogates go; and "=?" gets an invisible zero-width space, because the email
    package decodes RFC 2047 words in values it is given, which would let a
    customer's literal "=?utf-8?b?…?=" turn back into CR/LF (header injection).
    """
    text = " ".join(value.split())
    text = "".join(c for c in text if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF)
    return text.replace("=?", "=\u200b?")


def one_recipient(value: str) -> str:
    """The one mailbox of a To header: the first address of ``value``.

    A mail goes to one recipient (the outbox row's), so a list that reached us as one
    address (a participant stored as ``a@x.it,b@evil.test``) must not put a second,
    unseen recipient in the header, where a reply-all would find it.
    """
    value = one_line(value)
    found = [(name, addr) for name, addr in getaddresses([value]) if "@" in addr]
    if not found:
        return value
    name, addr = found[0]
    try:
        # Address, not formataddr: an RFC 6532 address (UTF-8 local part) is valid
        # here, and formataddr insists on ASCII.
        return str(Address(display_name=name, addr_spec=addr))
    except (ValueError, IndexError, HeaderParseError):
        return addr


@dataclass
class Envelope:
    """Who a mail is from and to, and how it threads (RFC 5322 §3.6.4)."""

    from_: str
    to: str
    message_id: str
    reply_to: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    auto_submitted: str | None = "auto-replied"
    x_loop: str | None = None


def build(envelope: Envelope, rendered: Rendered, now: datetime) -> EmailMessage:
    """The outbound message: headers from ``envelope``, body from ``rendered``."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = envelope.from_
    msg["To"] = one_recipient(envelope.to)
    msg["Subject"] = one_line(rendered.subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = envelope.message_id
    if envelope.reply_to:
        msg["Reply-To"] = envelope.reply_to
    if envelope.in_reply_to:
        msg["In-Reply-To"] = envelope.in_reply_to
    if envelope.references:
        msg["References"] = " ".join(envelope.references)
    if envelope.auto_submitted:
        # RFC 3834 §5: mark automatic mail so that other robots do not answer it.
        msg["Auto-Submitted"] = envelope.auto_submitted
    if envelope.x_loop:
        msg["X-Loop"] = envelope.x_loop
    msg.set_content(rendered.text)
    if rendered.html:
        msg.add_alternative(rendered.html, subtype="html")
    return msg
