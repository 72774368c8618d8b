"""message.parse: decoded headers, addresses, bodies in any charset, and attachments."""

from __future__ import annotations

import email
import email.policy
import hashlib
from dataclasses import replace
from email.message import EmailMessage

import pytest

from mailgate import bigparts
from mailgate.message import parse


def raw(*headers: str, body: bytes = b"Hello.\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def test_rfc2047_subjects_are_decoded():
    utf8 = parse(raw("From: a@x.com", "Subject: =?utf-8?b?w4FydsOtenTFsXLFkQ==?="))
    latin2 = parse(raw("From: a@x.com", "Subject: =?iso-8859-2?q?=C1rv=EDzt=FBr=F5_t=FCk=F6r?="))
    assert utf8.subject == "Árvíztűrő"
    assert latin2.subject == "Árvíztűrő tükör"


def test_from_with_display_name():
    mail = parse(raw('From: "Rossi, Mario" <Mario.Rossi@Acme.IT>', "Subject: x"))
    assert mail.from_name == "Rossi, Mario"
    assert mail.from_addr == "mario.rossi@acme.it"


def test_from_with_encoded_display_name():
    mail = parse(raw("From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jorg@beta.hu>", "Subject: x"))
    assert mail.from_name == "Jörg Müller"
    assert mail.from_addr == "jorg@beta.hu"


def test_encoded_display_name_cannot_change_the_address():
    mail = parse(raw("From: =?utf-8?q?alice=40example.com?= <x@evil.com>", "Subject: x"))
    assert mail.from_addr == "x@evil.com"


def test_to_and_cc_are_lower_cased_and_deduplicated():
    mail = parse(raw(
        "From: a@x.com",
        "To: HD <HD@Example.com>, hd@example.com, Bob <Bob@Acme.it>",
        "Cc: bob@acme.it, Carol <carol@acme.it>",
        "Cc: CAROL@acme.it",
        "Subject: x",
    ))
    assert mail.to == ["hd@example.com", "bob@acme.it"]
    assert mail.cc == ["bob@acme.it", "carol@acme.it"]


def test_threading_headers_are_extracted():
    mail = parse(raw(
        "From: a@x.com",
        "Subject: Re: x",
        "Message-ID:  <reply.1@acme.it> ",
        "In-Reply-To: <orig.1@example.com>",
        "References: <root.1@example.com>\r\n <orig.1@example.com>",
    ))
    assert mail.message_id == "<reply.1@acme.it>"
    assert mail.in_reply_to == ["<orig.1@example.com>"]
    assert mail.references == ["<root.1@example.com>", "<orig.1@example.com>"]


def test_missing_message_id_is_none():
    assert parse(raw("From: a@x.com", "Subject: x")).message_id is None


def test_folded_subject_becomes_one_line():
    mail = parse(raw("From: a@x.com", "Subject: The printer on\r\n  floor 3\r\n\tis broken"))
    assert mail.subject == "The printer on floor 3 is broken"


def test_html_only_mail_gets_a_text_body():
    html = b"<html><body><p>Printer <b>broken</b></p><ul><li>floor 3</li></ul></body></html>"
    mail = parse(raw("From: a@x.com", "Subject: x", "Content-Type: text/html; charset=utf-8",
                     body=html))
    assert mail.html is not None and "<b>broken</b>" in mail.html
    assert "Printer broken" in mail.text
    assert "floor 3" in mail.text
    assert "<" not in mail.text


def test_unknown_charset_and_invalid_bytes_do_not_raise():
    body = b"Hello world \xff\xfe\xc3 still readable\r\n"
    mail = parse(raw("From: a@x.com", "Subject: x",
                     'Content-Type: text/plain; charset="x-unknown-foo"', body=body))
    assert "Hello world" in mail.text
    assert "still readable" in mail.text


def test_invalid_utf8_body_does_not_raise():
    body = b"Ciao \xc3\x28 mondo\r\n"
    mail = parse(raw("From: a@x.com", "Subject: x", "Content-Type: text/plain; charset=utf-8",
                     body=body))
    assert "Ciao" in mail.text and "mondo" in mail.text


@pytest.mark.parametrize(
    ("charset", "text"),
    [("koi8-r", "Здравствуйте, принтер сломался"), ("iso-8859-2", "Árvíztűrő tükörfúrógép")],
)
def test_legacy_charset_bodies_decode(charset, text):
    msg = EmailMessage()
    msg["From"] = "a@x.com"
    msg["Subject"] = "x"
    msg.set_content(text, charset=charset)
    assert charset in msg["Content-Type"]
    assert parse(msg.as_bytes()).text.strip() == text


def test_attachments_have_name_type_size_and_digest():
    pdf = b"%PDF-1.4 " + bytes(range(256)) * 4
    msg = EmailMessage()
    msg["From"] = "a@x.com"
    msg["Subject"] = "report"
    msg.set_content("See attached.")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="report.pdf")
    mail = parse(msg.as_bytes())
    assert mail.text.strip() == "See attached."
    [att] = mail.attachments
    assert att.filename == "report.pdf"
    assert att.content_type == "application/pdf"
    assert att.size == len(pdf)
    assert att.data == pdf
    assert att.sha256 == hashlib.sha256(pdf).hexdigest()


def test_attachment_name_cannot_climb_folders():
    msg = EmailMessage()
    msg["From"] = "a@x.com"
    msg["Subject"] = "x"
    msg.set_content("body")
    msg.add_attachment(b"root:x:0:0", maintype="application", subtype="octet-stream",
                       filename="../../etc/passwd")
    [att] = parse(msg.as_bytes()).attachments
    assert "/" not in att.filename
    assert att.filename == "passwd"


@pytest.mark.parametrize("text, charset", [
    ("Привет, у нас не работает принтер. Помогите пожалуйста.", "koi8-r"),
    ("Árvíztűrő tükörfúrógép, nem működik a nyomtató.", "iso-8859-2"),
    ("Der Drucker druckt nicht, schöne Grüße", "iso-8859-15"),
])
def test_undeclared_8bit_body_is_decoded_by_detection(text, charset):
    raw = (b"From: ivan@gamma.ru\r\nTo: hd@example.com\r\nSubject: test\r\n"
           b"Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           + text.encode(charset) + b"\r\n")
    assert parse(raw).text.strip() == text


def test_wrongly_declared_charset_falls_back_to_detection():
    text = "Привет, у нас не работает принтер. Помогите пожалуйста."
    raw = (b"From: ivan@gamma.ru\r\nTo: hd@example.com\r\nSubject: test\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           + text.encode("koi8-r") + b"\r\n")
    assert parse(raw).text.strip() == text


# Long base64 runs are parsed from the raw bytes, not through the email package
# (bigparts.py).  Whatever the shape of the mail, the result must be what the plain
# parse gives.

def _files_mail(*parts: EmailMessage | tuple[bytes, str, str, str]) -> bytes:
    msg = EmailMessage()
    msg["From"] = "a@x.com"
    msg["Subject"] = "logs"
    msg.set_content("See attached.")
    for part in parts:
        if isinstance(part, EmailMessage):
            msg.add_attachment(part)
        else:
            data, maintype, subtype, name = part
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def _forwarded(inner: bytes) -> EmailMessage:
    return email.message_from_bytes(inner, policy=email.policy.default)


FILE = bytes(range(256)) * 160  # 40 KB: a run of base64 lines of about 55 KB
LOG = ("2026-12-07 04:15 printer offline, retrying\n" * 1200)  # 52 KB of text


@pytest.mark.parametrize("raw_mail", [
    _files_mail((FILE, "application", "pdf", "report.pdf")),
    _files_mail((FILE, "application", "zip", "a.zip"), (FILE[::-1], "image", "png", "b.png")),
    _files_mail((LOG.encode(), "text", "plain", "event.log")),
    _files_mail(_forwarded(_files_mail((FILE, "application", "pdf", "inner.pdf")))),
], ids=["one file", "two files", "text file", "forwarded mail with a file"])
def test_long_base64_bodies_parse_as_the_whole_mail_does(raw_mail, monkeypatch):
    assert bigparts.split(raw_mail)[1], "no run was long enough to be elided"
    elided = parse(raw_mail)
    monkeypatch.setattr(bigparts, "MIN_RUN", 1 << 40)
    whole = parse(raw_mail)
    # mail-parser names a forwarded message at random ("xkqzv.txt"): compare the rest.
    assert [(a.content_type, a.size, a.sha256) for a in whole.attachments] == [
        (a.content_type, a.size, a.sha256) for a in elided.attachments]
    assert replace(whole, attachments=[]) == replace(elided, attachments=[])
    assert FILE in [a.data for a in elided.attachments] or any(
        LOG.encode() in a.data for a in elided.attachments)


def test_a_long_base64_text_body_is_read_as_text():
    msg = EmailMessage()
    msg["From"] = "a@x.com"
    msg["Subject"] = "log"
    msg.set_content(LOG, charset="utf-8", cte="base64")
    raw_mail = msg.as_bytes()
    assert bigparts.split(raw_mail)[1]
    assert parse(raw_mail).text.strip() == LOG.strip()
