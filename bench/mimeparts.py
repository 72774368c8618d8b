"""MIME building blocks of the benchmark corpus: bodies, HTML alternatives, the
header block a real client and two relays leave, and deterministic bytes.

Mails are built with the compat32 ``email.mime`` classes because they let a part and a
header carry ISO-8859-2 or KOI8-R, as the customers' clients send them; every MIME
boundary is given explicitly, so the output does not depend on the global random state.
"""

from __future__ import annotations

import base64
import html
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr
from io import BytesIO

import texts

WIRE = compat32.clone(linesep="\r\n")  # SMTP's line ending, so nothing is rewritten on the way


@dataclass(frozen=True)
class Headers:
    """What the envelope of one mail says."""

    sender: tuple[str, str]  # (display name, address)
    to: str
    subject: str
    date: datetime
    message_id: str
    cc: tuple[str, str] | None = None
    answers: str | None = None  # the Message-ID this mail replies to


def letter(lang: str, sentences: list[str], name: str, signature: bool) -> str:
    """A customer's request: greeting, a paragraph or two, thanks, name, signature."""
    half = max(1, len(sentences) // 2)
    body = [texts.GREETING[lang], "", " ".join(sentences[:half])]
    if sentences[half:]:
        body += ["", " ".join(sentences[half:])]
    body += ["", texts.THANKS[lang], name]
    if signature:
        body += ["-- ", name, texts.SIGNATURE_ROLE[lang], "Tel. +39 02 555 0100"]
    return "\n".join(body) + "\n"


def reply_text(lang: str, answer: str, name: str, original, when: datetime) -> str:
    """A reply: a line or two, the name, then the quoted history of ``original``."""
    header = texts.QUOTE_HEADER[lang].format(date=format_datetime(when), name=original.name,
                                            addr=original.sender)
    quoted = "\n".join(f"> {line}".rstrip() for line in original.text.splitlines())
    return f"{answer}\n\n{name}\n\n{header}\n{quoted}\n"


def _charset(name: str) -> Charset | str:
    if name == "utf-8-qp":
        charset = Charset("utf-8")
        charset.body_encoding = QP
        return charset
    return name


def header_charset(name: str) -> str:
    """The charset for encoded words in the headers of a mail whose body is ``name``."""
    return "utf-8" if name == "utf-8-qp" else name


def text_part(text: str, charset: str) -> MIMEText:
    """A text/plain part in ``charset`` (``utf-8-qp``: UTF-8, quoted-printable)."""
    part = MIMEText(text, "plain", _charset(charset))
    del part["MIME-Version"]
    return part


def to_html(text: str, lang: str) -> str:
    """The HTML a mail client makes of ``text``: paragraphs, the quoted history (the
    ``>`` lines) as a blockquote."""
    lines = text.splitlines()
    cut = next((n for n, line in enumerate(lines) if line.startswith(">")), len(lines))
    paras = "\n".join(lines[:cut]).split("\n\n")
    blocks = ["<p>" + "<br>\n".join(html.escape(x) for x in p.splitlines()) + "</p>"
              for p in paras]
    if lines[cut:]:
        quoted = "<br>\n".join(html.escape(x.lstrip("> ")) for x in lines[cut:])
        blocks.append(f'<blockquote style="margin:0 0 0 .8ex;border-left:1px solid #ccc">'
                      f"{quoted}</blockquote>")
    return (f'<html lang="{lang}"><head><meta http-equiv="Content-Type" content="text/html">'
            '<style>body{font-family:Calibri,Arial,sans-serif;font-size:11pt}</style></head>'
            '<body><div dir="ltr">\n' + "\n".join(blocks) + "\n</div></body></html>\n")


def alternative(text: str, charset: str, lang: str, boundary: str) -> MIMEMultipart:
    """multipart/alternative of ``text`` and its HTML rendering."""
    part = MIMEMultipart("alternative", boundary=boundary)
    part.attach(text_part(text, charset))
    rich = MIMEText(to_html(text, lang), "html", _charset(charset))
    del rich["MIME-Version"]
    part.attach(rich)
    del part["MIME-Version"]
    return part


def log_text(rng: random.Random, size: int) -> str:
    """About ``size`` bytes of an application log (an attachment customers send)."""
    levels = ["INFO ", "INFO ", "DEBUG", "WARN ", "ERROR"]
    lines, total, n = [], 0, 0
    while total < size:
        stamp = f"2026-03-02 08:{n // 600 % 60:02d}:{n // 10 % 60:02d}.{n % 1000:03d}"
        line = (f"{stamp} {rng.choice(levels)} [worker-{rng.randrange(16)}] request "
                f"{rng.getrandbits(32):08x} took {rng.randrange(2000)} ms "
                f"status={rng.choice([200, 200, 304, 500, 503])}")
        lines.append(line)
        total += len(line) + 1
        n += 1
    return "\n".join(lines) + "\n"


def _received(rng: random.Random, when: datetime, domain: str) -> list[str]:
    relay = f"mx{rng.randrange(1, 4)}.{domain}"
    first = when + timedelta(seconds=rng.randrange(1, 5))
    return [
        f"from {relay} ({relay} [203.0.113.{rng.randrange(1, 250)}]) by mx.example.com "
        f"(Postfix) with ESMTPS id {rng.getrandbits(40):X} for <hd@example.com>; "
        f"{format_datetime(first)}",
        f"from [10.1.{rng.randrange(255)}.{rng.randrange(255)}] by {relay} with ESMTPSA "
        f"id {rng.getrandbits(48):x}; {format_datetime(when)}",
    ]


def _dkim(rng: random.Random, domain: str) -> str:
    b64 = base64.b64encode(rng.randbytes(256)).decode()
    body_hash = base64.b64encode(rng.randbytes(32)).decode()
    return (f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=mail; "
            f"h=from:to:subject:date:message-id; bh={body_hash}; b={b64}")


def envelope(part, head: Headers, charset: str, rng: random.Random) -> bytes:
    """``part`` with the header block of ``head`` on top, as CRLF bytes."""
    body_headers = part.items()
    for key in {k for k, _ in body_headers}:
        del part[key]
    domain = head.sender[1].rpartition("@")[2]
    hcs = header_charset(charset)
    for line in _received(rng, head.date, domain):
        part["Received"] = line
    part["DKIM-Signature"] = _dkim(rng, domain)
    part["From"] = formataddr(head.sender, charset=hcs)
    part["To"] = head.to
    if head.cc:
        part["Cc"] = formataddr(head.cc, charset=hcs)
    part["Subject"] = Header(head.subject, hcs).encode()
    part["Date"] = format_datetime(head.date)
    part["Message-ID"] = head.message_id
    if head.answers:
        part["In-Reply-To"] = head.answers
        part["References"] = head.answers
    part["User-Agent"] = rng.choice(["Microsoft Outlook 16.0", "Mozilla Thunderbird 115.8",
                                     "Apple Mail (2.3774)", "Roundcube Webmail/1.6.6"])
    if "MIME-Version" not in dict(body_headers):
        part["MIME-Version"] = "1.0"
    for key, value in body_headers:
        part[key] = value
    out = BytesIO()
    BytesGenerator(out, policy=WIRE).flatten(part)
    return out.getvalue()
