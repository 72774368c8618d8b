"""classify: normal mail versus auto-replies, bulk, bounces and our own loops."""

from __future__ import annotations

import pytest

from mailgate import msgids
from mailgate.classify import AUTO_REPLY, BOUNCE, BULK, LOOP, NORMAL, OwnMarks, classify
from mailgate.message import parse

OWN = OwnMarks(
    addresses=frozenset({"hd@example.com", "support@example.com"}),
    x_loop="hd@example.com",
    msgid_domain="example.com",
)


def mail(*headers: str, sender: str = "mario@acme.it", body: str = "Printer is broken."):
    lines = [f"From: Mario Rossi <{sender}>", "To: hd@example.com", "Subject: Help",
             "Message-ID: <abc123@acme.it>", *headers]
    return parse(("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode())


def kind(*headers: str, mail_from: str | None = "mario@acme.it", sender: str = "mario@acme.it"):
    return classify(mail(*headers, sender=sender), mail_from, OWN).kind


def test_plain_customer_mail_is_normal():
    verdict = classify(mail(), "mario@acme.it", OWN)
    assert verdict.kind == NORMAL
    assert verdict.normal


def test_auto_submitted_auto_replied_is_auto_reply():
    assert kind("Auto-Submitted: auto-replied") == AUTO_REPLY


def test_auto_submitted_no_is_normal():
    assert kind("Auto-Submitted: no") == NORMAL


@pytest.mark.parametrize("value", ["bulk", "junk", "list", "Bulk"])
def test_precedence_bulk_junk_list_is_bulk(value):
    assert kind(f"Precedence: {value}") == BULK


def test_list_id_is_bulk():
    assert kind("List-Id: Customers <customers.lists.acme.it>") == BULK


@pytest.mark.parametrize("mail_from", ["", "<>"])
def test_null_envelope_sender_is_bounce(mail_from):
    assert kind(mail_from=mail_from) == BOUNCE


def test_no_envelope_at_all_is_not_a_bounce():
    assert kind(mail_from=None) == NORMAL


def test_mailer_daemon_sender_is_bounce():
    assert kind(sender="MAILER-DAEMON@mx.acme.it") == BOUNCE


def test_multipart_report_is_bounce():
    headers = ('Content-Type: multipart/report; report-type=delivery-status; boundary="b"',)
    body = "--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--b--"
    verdict = classify(mail(*headers, body=body), "mario@acme.it", OWN)
    assert verdict.kind == BOUNCE


def test_our_x_loop_is_loop():
    assert kind("X-Loop: HD@example.com") == LOOP


def test_our_message_id_is_loop():
    ours = msgids.make("example.com", 1, "ab")
    raw = f"From: x@acme.it\r\nMessage-ID: {ours}\r\nSubject: Re\r\n\r\nhi\r\n".encode()
    verdict = classify(parse(raw), "x@acme.it", OWN)
    assert verdict.kind == LOOP
    assert ours in verdict.reason


def test_mail_from_our_own_address_is_loop():
    assert kind(sender="Support@Example.com") == LOOP
