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
from email.utils import format_datetime, getaddresses, parseaddr
from html import escape
from pathlib import Path

import jinja2

from mailgate.outbound import mimewrite

FALLBACK_LANGUAGE = "en"


@dataclass
class Rendered:
    """A rendered template: one-line subject, text, optional HTML."""

    subject: str
    text: str
    html: str | None


class _Template(jinja2.Template):
    """A Jinja template that merges its globals into a context once, not per render.

    ``Template.render`` copies the template's globals, a ``ChainMap`` of its own and
    the environment's, into every new context, and a ChainMap is walked in Python:
    with a subject, a text and an HTML template per notice that was 1.2 % of the
    pipeline's instructions (bench/RESULTS.md).  The globals are read once, here, and each
    context starts from that dict; neither environment's globals change after the
    templates are loaded (a reload makes new ``Templates``).
    """

    _merged: dict | None = None  # the globals, once read

    def new_context(self, vars=None, shared=False, locals=None):  # noqa: A002 - Jinja's names
        """A render's context: ``vars`` over the globals, as Jinja makes it."""
        if shared:
            return super().new_context(vars, shared, locals)
        if self._merged is None:
            self._merged = dict(self.globals)
        return super().new_context({**self._merged, **(vars or {})}, True, locals)


class Templates:
    """The template folder, rendered with strict undefined variables.

    Read once: a reload (SIGHUP) makes a new ``Templates``, so neither Jinja nor this
    class looks at the files again for every mail.
    """

    def __init__(self, root: Path):
        self.root = root
        loader = jinja2.FileSystemLoader(str(root))
        common = dict(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                      auto_reload=False)
        self._text = jinja2.Environment(autoescape=False, **common)  # noqa: S701 - plain text
        self._html = jinja2.Environment(autoescape=True, **common)
        self._text.template_class = self._html.template_class = _Template
        self._files: dict[Path, bool] = {}
        self._chosen: dict[tuple[str, str], tuple] = {}

    def _is_file(self, path: Path) -> bool:
        found = self._files.get(path)
        if found is None:
            found = self._files[path] = path.is_file()
        return found

    def exists(self, lang: str, name: str) -> bool:
        """True when ``name`` has its subject and text templates in ``lang``."""
        parts = ("subject", "txt")
        return all(self._is_file(self.root / lang / f"{name}.{part}.j2") for part in parts)

    def render(self, name: str, lang: str, context: dict) -> Rendered:
        """Render ``name`` in ``lang`` (or the fallback language) with ``context``."""
        lang, subject, text, html = self._choose(name, lang)
        text = text.render(context)
        html = html.render(context) if html is not None else text_to_html(text, lang)
        return Rendered(one_line(subject.render(context)), text, html)

    def _choose(self, name: str, lang: str) -> tuple:
        """The language and the subject, text and HTML (or None) templates that render
        ``name`` for ``lang``; chosen once per pair, as every mail of a kind asks again."""
        chosen = self._chosen.get((name, lang))
        if chosen is None:
            used = lang if self.exists(lang, name) else FALLBACK_LANGUAGE
            html = (self._html.get_template(f"{used}/{name}.html.j2")
                    if self._is_file(self.root / used / f"{name}.html.j2") else None)
            chosen = self._chosen[name, lang] = (
                used, self._text.get_template(f"{used}/{name}.subject.j2"),
                self._text.get_template(f"{used}/{name}.txt.j2"), html)
        return chosen


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
    if not text.isprintable():  # a lone surrogate is not printable either (category Cs)
        text = "".join(c for c in text if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF)
    return text.replace("=?", "=\u200b?")


def one_recipient(value: str) -> tuple[str, str]:
    """The one mailbox of a To header: ``(display name, address)`` of the first
    address of ``value`` (``("", value)`` when it holds none).

    A mail goes to one recipient (the outbox row's), so a list that reached us as one
    address (a participant stored as ``a@x.it,b@evil.test``) must not put a second,
    unseen recipient in the header, where a reply-all would find it.
    """
    value = one_line(value)
    found = [(name, addr) for name, addr in getaddresses([value]) if "@" in addr]
    return found[0] if found else ("", value)


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


@dataclass
class Composed:
    """An outbound message as it goes on the wire, and what the outbox row records."""

    message: bytes
    mail_from: str
    to: str
    subject: str
    message_id: str


def build(envelope: Envelope, rendered: Rendered, now: datetime,
          attach: bytes | None = None) -> Composed:
    """The outbound message: headers from ``envelope``, body from ``rendered``, and
    the received message ``attach`` attached as it arrived (the sales forward)."""
    from_name, from_addr = parseaddr(envelope.from_)
    to_name, to_addr = one_recipient(envelope.to)
    subject = one_line(rendered.subject)
    headers = [mimewrite.address_header("From", from_name, from_addr),
               mimewrite.address_header("To", to_name, to_addr),
               mimewrite.header("Subject", subject),
               mimewrite.header("Date", format_datetime(now)),
               mimewrite.header("Message-ID", envelope.message_id)]
    optional = [("Reply-To", envelope.reply_to), ("In-Reply-To", envelope.in_reply_to),
                ("References", " ".join(envelope.references)),
                # RFC 3834 §5: mark automatic mail so that other robots do not answer it.
                ("Auto-Submitted", envelope.auto_submitted), ("X-Loop", envelope.x_loop)]
    headers += [mimewrite.header(name, one_line(value)) for name, value in optional if value]
    entity = mimewrite.text_part("plain", rendered.text)
    if rendered.html:
        entity = mimewrite.multipart(
            "alternative", [entity, mimewrite.text_part("html", rendered.html)])
    if attach is not None:
        entity = mimewrite.multipart("mixed", [entity, mimewrite.rfc822_part(attach)])
    return Composed(mimewrite.message(headers, entity), from_addr.lower(), to_addr.lower(),
                    subject, envelope.message_id)
