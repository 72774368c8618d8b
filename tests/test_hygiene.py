"""Mail hygiene on the way in and out: attachments kept once and capped, automatic
mail limited per address and per ticket, bouncing addresses spared, outbound mail
that strict parsers accept, and template previews."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from mailgate.db import session_scope
from mailgate.models import Blob, Contact
from tests.desk import Desk
from tests.helpers import mail


def with_file(msg, data: bytes, name: str, subtype: str = "png"):
    msg.add_attachment(data, maintype="image", subtype=subtype, filename=name)
    return msg


def blobs(desk: Desk) -> int:
    with session_scope(desk.svc.engine) as session:
        return len(list(session.exec(select(Blob.sha256))))


def test_the_same_file_is_stored_once_and_an_oversized_one_is_listed_with_a_note(tmp_path):
    desk = Desk(tmp_path, extra_config="\n[tickets]\nmax_attachment_size = 1000\n")
    logo = b"\x89PNG logo" * 10
    first = desk.deliver(with_file(mail("mario@acme.it", "One"), logo, "logo.png")).ticket
    desk.deliver(with_file(mail("mario@acme.it", "Two"), logo, "logo.png"))
    assert blobs(desk) == 1  # the signature logo of every mail is stored once

    big = with_file(mail("mario@acme.it", f"Re: [#{first}] scan"), b"x" * 5000, "../../scan.png")
    desk.deliver(big)
    shown = desk.home.json("tickets", "show", str(first))
    [dropped] = shown["articles"][1]["attachments"]
    assert dropped["filename"] == "scan.png" and dropped["size"] == 5000
    assert any(e["kind"] == "attachment_dropped" and "max_attachment_size 1000" in e["detail"]
               for e in shown["events"])
    assert blobs(desk) == 1


def test_automatic_mail_about_one_ticket_is_capped_per_day(tmp_path):
    desk = Desk(tmp_path, extra_config='auth = "none"\n[tickets]\nauto_mail_per_ticket = 4\n')
    number = desk.deliver(mail("mario@acme.it", "Flapping", cc="a@acme.it, b@acme.it")).ticket
    for status in ("waiting", "open", "waiting"):  # three people told of each change
        desk.deliver(mail("alice@example.com", f"Re: [#{number}] x", f"#status {status}\n"))
    automatic = desk.home.query(
        "SELECT count(*) FROM outbox WHERE ticket_number = ? AND automatic", number)[0][0]
    assert automatic == 4  # the auto reply and three phase mails; the rest held back
    events = desk.home.json("tickets", "show", str(number))["events"]
    held = [e for e in events if e["kind"] == "auto_mail_suppressed"]
    assert len(held) == 6 and "automatic mails about ticket" in held[0]["detail"]
    desk.clock.advance(days=1, minutes=1)
    desk.deliver(mail("alice@example.com", f"Re: [#{number}] x", "#status resolved\n"))
    assert desk.home.query("SELECT count(*) FROM outbox WHERE ticket_number = ? AND automatic",
                           number)[0][0] == 7


def test_no_automatic_mail_to_a_bouncing_address_until_it_writes_again(tmp_path):
    desk = Desk(tmp_path)
    with session_scope(desk.svc.engine) as session:
        session.add(Contact(address="gone@acme.it", bouncing_since=datetime(2026, 1, 1,
                                                                           tzinfo=UTC)))
    first = desk.deliver(mail("mario@acme.it", "Printer", cc="gone@acme.it")).ticket
    assert desk.outbox("gone@acme.it") == []
    assert desk.deliver(mail("gone@acme.it", f"Re: [#{first}] back", "I am back.\n"))
    desk.deliver(mail("gone@acme.it", "New question"))
    assert len(desk.outbox("gone@acme.it")) == 1  # the auto reply to its own new ticket


def test_every_outbound_mail_parses_strictly_and_keeps_lines_short(tmp_path):
    desk = Desk(tmp_path)
    long_subject = "Stampante " + "molto " * 80 + "{{ 7*7 }} =?utf-8?b?SGk=?= Ünïcödé"
    desk.deliver(mail("mario@acme.it", long_subject, "riga\n" * 3))
    rows = desk.home.query("SELECT message FROM outbox")
    assert rows
    for (raw,) in rows:
        parsed = email.message_from_bytes(raw, policy=email.policy.strict)
        assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
        assert "{{ 7*7 }}" in str(parsed["Subject"]) and "Ünïcödé" in str(parsed["Subject"])
        assert parsed["Message-ID"] and parsed["Date"] and parsed["X-Loop"]
        assert parsed.get_content_type() == "multipart/alternative"


def test_render_previews_a_template_for_a_real_ticket(tmp_path):
    desk = Desk(tmp_path)
    number = desk.deliver(mail("mario@acme.it", "Anteprima")).ticket
    out = desk.home.cli("render", "status_resolved", "--lang", "it", "--ticket", str(number))
    first, _, body = out.stdout.partition("\n\n")
    assert first == f"Subject: [#{number}] Ticket risolto: Anteprima"
    assert str(number) in body and "#close" in body
    html = desk.home.cli("render", "reply", "--lang", "ru", "--html").stdout
    assert html.startswith("Subject: ") and '<html lang="ru">' in html


def dsn(failed: str, returned_message_id: str) -> bytes:
    """A delivery status notification (RFC 3464) for a mail we sent."""
    return (
        "From: MAILER-DAEMON@mx.acme.it\r\nTo: hd@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.acme.it>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nI could not deliver your message.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.acme.it\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: hd@example.com\r\nTo: {failed}\r\nMessage-ID: {returned_message_id}\r\n"
        "--B--\r\n").encode()


def test_a_bounce_of_our_mail_marks_the_address_and_lands_on_its_ticket(tmp_path):
    desk = Desk(tmp_path, extra_config='auth = "none"\n')
    number = desk.deliver(mail("mario@acme.it", "Printer", cc="gone@acme.it")).ticket
    assert desk.outbox("gone@acme.it") == []  # Cc'd: no auto reply, only phase mails
    desk.deliver(mail("alice@example.com", f"Re: [#{number}] x", "#status open\n"))
    [to_gone] = desk.outbox("gone@acme.it")
    result = desk.deliver(dsn("gone@acme.it", to_gone["Message-ID"]), mail_from="")
    assert result.state == "ignored" and result.ticket == number
    assert "1 address(es) marked bouncing" in result.outcome
    events = desk.home.json("tickets", "show", str(number))["events"]
    assert any(e["kind"] == "bounce" and "gone@acme.it (5.1.1)" in e["detail"] for e in events)
    assert len(desk.home.json("tickets", "list")) == 1  # a bounce never opens a ticket
    desk.deliver(mail("alice@example.com", f"Re: [#{number}] x", "#status waiting\nOne moment.\n"))
    assert len(desk.outbox("gone@acme.it")) == 1  # nothing more to the bouncing address,
    assert any(e["kind"] == "mail_suppressed"          # not even a person's reply
               for e in desk.home.json("tickets", "show", str(number))["events"])
    assert len(desk.outbox("mario@acme.it")) == 4  # auto reply, open, waiting, the reply


def _nested(depth: int) -> bytes:
    """A message/rfc822 inside a message/rfc822 … ``depth`` times."""
    inner = b"From: a@acme.it\r\nSubject: innermost\r\n\r\nbottom\r\n"
    for level in range(depth):
        inner = (f"From: a@acme.it\r\nSubject: level {level}\r\n"
                 "Content-Type: message/rfc822\r\n\r\n").encode() + inner
    return inner


@pytest.mark.parametrize("name, raw", [
    ("a 200 kB header line",
     b"From: mario@acme.it\r\nSubject: " + b"x" * 200_000 + b"\r\n\r\nbody\r\n"),
    ("3,000 headers",
     b"From: mario@acme.it\r\n" + b"X-Junk: y\r\n" * 3000 + b"Subject: many\r\n\r\nbody\r\n"),
    ("message/rfc822 nested 60 deep", b"To: hd@example.com\r\n" + _nested(60)),
    ("an unclosed multipart with a bogus charset",
     b'From: mario@acme.it\r\nSubject: broken\r\nContent-Type: multipart/mixed; boundary="b"'
     b'\r\n\r\n--b\r\nContent-Type: text/plain; charset="x-bogus"\r\n'
     b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--b\r\n"),
])
def test_hostile_shapes_end_processed_or_ignored(tmp_path, name, raw):
    desk = Desk(tmp_path)
    result = desk.deliver(raw)
    assert result.state in ("processed", "ignored"), f"{name}: {result}"


def test_a_bounce_with_nul_in_its_text_is_read_without_it(tmp_path):
    # Found by hypothesis on PostgreSQL, which cannot store NUL in a text column: the
    # bounce is read from the raw message, whose text still holds it.
    desk = Desk(tmp_path)
    raw = (b"Message-ID: <ef27403b@fuzz.example>\r\nFrom: <>\r\nTo: hd@example.com\r\n"
           b"Subject: \r\nPrecedence: bulk\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
           b"\r\n\x000@0.0 \x00unknown user\r\n")
    desk.deliver(raw, mail_from=None)
    assert desk.home.query("SELECT state FROM spool") == [("ignored",)]
    [(address, reason)] = desk.home.query(
        "SELECT address, bounce_reason FROM contact WHERE bouncing_since IS NOT NULL")
    assert "\x00" not in address + reason and "0@0.0" in reason


def test_a_staff_mail_with_nul_in_its_authentication_results_is_refused_not_failed(tmp_path):
    # The reason an unauthenticated staff mail is refused quotes its Authentication-
    # Results, read from the raw message (not the parsed one, whose texts hold no
    # NUL); on PostgreSQL the event that records it failed the whole mail.
    desk = Desk(tmp_path, extra_config='authserv_id = "mx.example.com"\n')
    number = desk.deliver(mail("mario@acme.it", "Printer")).ticket
    forged = mail("alice@example.com", f"Re: [#{number}] Printer", "#status open\n", headers={
        "Authentication-Results": "mx.example.com; dkim=fail header.d=exa\x00mple.com"})
    result = desk.deliver(forged.as_bytes())
    why = "unreadable Authentication-Results of mx.example.com: Syntax error"
    assert result.outcome.startswith(f"staff mail refused: {why}")
    [refused] = [e for e in desk.view(number)["events"] if e["kind"] == "staff_auth_failed"]
    assert refused["detail"].startswith(why) and "\x00" not in refused["detail"]
    assert desk.view(number)["status"] == "new"
