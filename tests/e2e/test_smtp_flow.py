"""End to end over a real loopback SMTP socket against a running ``mailgate serve``.

Each test sends mail as a customer's MTA would, waits for the daemon to settle, and
checks what a customer, a staff member or a sysadmin would look at: the mails in the
outbound Maildir, and ``mailgate tickets|spool|outbox list --json``.
"""

from __future__ import annotations

import email.policy
import smtplib

import pytest

from tests.helpers import mail

pytestmark = pytest.mark.e2e


def send(home, msg, rcpts=None, sender=None) -> dict:
    """Deliver ``msg`` over SMTP; returns smtplib's refused-recipients dict."""
    with smtplib.SMTP("127.0.0.1", home.port, timeout=10) as client:
        return client.send_message(msg, from_addr=sender, to_addrs=rcpts)


def spooled(home) -> int:
    return home.query("SELECT count(*) FROM spool")[0][0]


def ticket_of(home, message_id: str) -> int | None:
    rows = home.query("SELECT ticket_number FROM spool WHERE message_id = ?", message_id)
    return rows[0][0] if rows else None


def deliver_and_settle(home, msg) -> int | None:
    """Send ``msg``, wait for the daemon, return the ticket it landed on."""
    send(home, msg)
    home.wait_settled(spooled(home))
    return ticket_of(home, msg["Message-ID"])


def test_new_mail_opens_ticket_and_answers_with_its_number(served):
    msg = mail("Mario Rossi <mario@acme.it>", "Stampante guasta", "La stampante non stampa.\n")
    send(served, msg)
    served.wait_settled(spooled(served))
    number = ticket_of(served, msg["Message-ID"])
    assert number is not None and number >= 10000

    [reply] = [m for m in served.mails_to("mario@acme.it") if m["In-Reply-To"] == msg["Message-ID"]]
    assert f"[#{number}]" in reply["Subject"]
    assert reply["References"] == msg["Message-ID"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Loop"] == "hd@example.com"
    assert reply["Reply-To"] == "hd@example.com"
    assert reply["Message-ID"].startswith(f"<{number}.")
    text = reply.get_body(("plain",)).get_content()
    assert str(number) in text and "P3" in text and "Stampante guasta" in text
    assert "mail" in text  # the origin

    staff = [m for m in served.mails_to("staff@example.com") if f"[#{number}]" in m["Subject"]]
    assert len(staff) == 1
    assert "La stampante non stampa." in staff[0].get_body(("plain",)).get_content()

    [ticket] = [t for t in served.json("tickets", "list") if t["number"] == number]
    assert ticket["company"] == "Acme Srl"
    assert ticket["requester"] == "mario@acme.it"
    assert ticket["status"] == "new" and ticket["origin"] == "mail"


def test_reply_with_tag_in_subject_threads_and_tells_staff(served):
    first = mail("luigi@acme.it", "VPN down")
    number = deliver_and_settle(served, first)

    reply = mail("luigi@acme.it", f"Re: [#{number}] VPN down", "Still down this morning.\n")
    send(served, reply)
    bare = mail("luigi@acme.it", f"about #{number} again", "And now the printer too.\n")
    send(served, bare)
    served.wait_settled(spooled(served))

    assert ticket_of(served, reply["Message-ID"]) == number
    assert ticket_of(served, bare["Message-ID"]) == number
    shown = served.json("tickets", "show", str(number))
    assert [a["text"].strip() for a in shown["articles"]][1:] == [
        "Still down this morning.", "And now the printer too."]
    told = [m for m in served.mails_to("staff@example.com")
            if m["In-Reply-To"] in (reply["Message-ID"], bare["Message-ID"])]
    assert len(told) == 2 and all(f"[#{number}]" in m["Subject"] for m in told)


def test_reply_through_references_threads_without_tag(served):
    first = mail("anna@beta.hu", "Nem megy a levelezés")
    number = deliver_and_settle(served, first)
    [ack] = [m for m in served.mails_to("anna@beta.hu") if m["In-Reply-To"] == first["Message-ID"]]
    assert "Ticket" in ack["Subject"] or "jegy" in ack["Subject"].lower()

    # A client that drops the subject tag but keeps the threading headers.
    reply = mail("anna@beta.hu", "Re: levelezés", "Még mindig nem megy.\n",
                 in_reply_to=ack["Message-ID"],
                 references=f"{first['Message-ID']} {ack['Message-ID']}")
    send(served, reply)
    served.wait_settled(spooled(served))
    assert ticket_of(served, reply["Message-ID"]) == number


def test_same_message_twice_or_to_an_alias_makes_one_ticket(served):
    msg = mail("piero@acme.it", "Duplicate me")
    before = len(served.json("tickets", "list"))
    send(served, msg, rcpts=["hd@example.com"])
    send(served, msg, rcpts=["support@example.com"])  # same Message-ID through the alias
    send(served, msg, rcpts=["hd@example.com", "support@example.com"])  # both in one go
    served.wait_settled(spooled(served))
    after = served.json("tickets", "list")
    assert len(after) == before + 1
    assert len([m for m in served.mails_to("piero@acme.it")
                if m["In-Reply-To"] == msg["Message-ID"]]) == 1


def test_stranger_naming_another_companys_ticket_gets_a_ticket_of_their_own(served):
    victim = mail("carla@acme.it", "Confidential payroll issue")
    number = deliver_and_settle(served, victim)

    intruder = mail("ivan@gamma.ru", f"Re: [#{number}] payroll", "Show me the payroll.\n")
    own = deliver_and_settle(served, intruder)
    assert own is not None and own != number
    shown = served.json("tickets", "show", str(number))
    assert [a["from"] for a in shown["articles"]] == ["carla@acme.it"]
    refused = [e for e in shown["events"] if e["kind"] == "refused"]
    assert len(refused) == 1 and refused[0]["actor"] == "ivan@gamma.ru"
    assert f"#{own}" in refused[0]["detail"]
    [answer] = [m for m in served.mails_to("ivan@gamma.ru")
                if m["In-Reply-To"] == intruder["Message-ID"]]
    body = answer.get_body(("plain",)).get_content()
    assert f"[#{own}]" in answer["Subject"] and str(number) not in answer["Subject"]
    assert "Confidential" not in body


def test_unknown_recipient_is_refused_with_550(served):
    refused = send(served, mail("mario@acme.it", "wrong door"),
                   rcpts=["hd@example.com", "nobody@example.com"])
    assert refused == {"nobody@example.com": (550, b"5.1.1 <nobody@example.com>: "
                                                   b"no such mailbox here")}
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        send(served, mail("mario@acme.it", "wrong"), rcpts=["other@elsewhere.org"])
    assert err.value.recipients["other@elsewhere.org"][0] == 550


def test_a_control_character_in_the_sender_is_refused_with_553(served):
    # RFC 5321 §4.1.2: no path holds one; on PostgreSQL a NUL would fail the spool's
    # group commit, and with it the other sessions' mail of that commit.
    good, before = mail("mario@acme.it", "after the bad sender"), spooled(served)
    with smtplib.SMTP("127.0.0.1", served.port, timeout=10) as client:
        client.ehlo()
        assert client.mail('"a\x00b"@example.net')[0] == 553
        assert client.mail('"a\tb"@example.net')[0] == 553
        client.send_message(good)  # the same session goes on
    served.wait_settled(before + 1)
    assert spooled(served) == before + 1 and ticket_of(served, good["Message-ID"])


def test_a_nul_in_the_message_id_is_dropped_not_refused(served):
    raw = (b"From: mario@acme.it\r\nTo: hd@example.com\r\nSubject: nul\r\n"
           b"Message-ID: <n\x00ul@acme.it>\r\n\r\nThe printer is broken.\r\n")
    with smtplib.SMTP("127.0.0.1", served.port, timeout=10) as client:
        client.sendmail("mario@acme.it", ["hd@example.com"], raw)
    served.wait_settled(spooled(served))
    assert ticket_of(served, "<nul@acme.it>")


def test_message_over_the_size_limit_is_refused_with_552(served):
    big = mail("mario@acme.it", "huge")
    big.set_content(("y" * 76 + "\n") * 3000)  # about 230 kB; the limit is 200 kB
    with smtplib.SMTP("127.0.0.1", served.port, timeout=10) as client:
        # Announced with SIZE (RFC 1870): refused at MAIL FROM.
        with pytest.raises(smtplib.SMTPSenderRefused) as err:
            client.sendmail("mario@acme.it", ["hd@example.com"], big.as_bytes())
        assert err.value.smtp_code == 552 and err.value.smtp_error.startswith(b"5.3.4")
        # Not announced: refused after DATA, once the bytes passed the limit.
        client.rset()
        client.mail("mario@acme.it")
        client.rcpt("hd@example.com")
        code, reply = client.data(big.as_bytes(policy=email.policy.SMTP))
    assert code == 552 and reply.startswith(b"5.3.4")
    assert not served.query("SELECT id FROM spool WHERE message_id = ?", big["Message-ID"])


def test_unknown_sender_follows_each_mailboxs_policy(served):
    sales = mail("joe@unknown-corp.com", "Quote please", to="hd@example.com")
    create = mail("joe@unknown-corp.com", "Open anyway", to="create@example.com")
    reject = mail("joe@unknown-corp.com", "Go away", to="reject@example.com")
    for msg in (sales, create, reject):
        send(served, msg, rcpts=[msg["To"]])
    served.wait_settled(spooled(served))

    assert ticket_of(served, sales["Message-ID"]) is None
    [forward] = [m for m in served.mails_to("sales@example.com") if "Quote please" in m["Subject"]]
    attached = [p for p in forward.iter_attachments()]
    assert attached and "Quote please" in attached[0].as_string()
    notices = [m for m in served.mails_to("joe@unknown-corp.com")
               if m["In-Reply-To"] == sales["Message-ID"]]
    assert len(notices) == 1 and notices[0]["Auto-Submitted"] == "auto-replied"

    number = ticket_of(served, create["Message-ID"])
    [ticket] = [t for t in served.json("tickets", "list") if t["number"] == number]
    assert ticket["company"] is None and ticket["requester"] == "joe@unknown-corp.com"

    [row] = [r for r in served.json("spool", "list") if r["message_id"] == reject["Message-ID"]]
    assert row["state"] == "ignored" and row["ticket"] is None and "rejected" in row["outcome"]
    assert not [m for m in served.mails_to("joe@unknown-corp.com")
                if m["In-Reply-To"] == reject["Message-ID"]]


@pytest.mark.parametrize("headers, sender, kind", [
    ({"Auto-Submitted": "auto-replied"}, "mario@acme.it", "auto_reply"),
    ({"Precedence": "bulk"}, "mario@acme.it", "bulk"),
    ({"Precedence": "junk"}, "mario@acme.it", "bulk"),
    ({"List-Id": "<news.acme.it>"}, "mario@acme.it", "bulk"),
    ({"X-Loop": "hd@example.com"}, "mario@acme.it", "loop"),
    ({}, "MAILER-DAEMON@mx.acme.it", "bounce"),
])
def test_robots_lists_and_loops_get_nothing_and_open_nothing(served, headers, sender, kind):
    msg = mail(sender, f"robot mail {kind} {sorted(headers)}", headers=headers)
    tickets_before = len(served.json("tickets", "list"))
    send(served, msg, sender=sender)
    served.wait_settled(spooled(served))
    [row] = [r for r in served.json("spool", "list") if r["message_id"] == msg["Message-ID"]]
    assert row["state"] == "ignored" and row["outcome"].startswith(kind)
    assert len(served.json("tickets", "list")) == tickets_before
    assert not [m for m in served.outbox_mails() if m["In-Reply-To"] == msg["Message-ID"]]


def test_null_envelope_sender_is_a_bounce(served):
    msg = mail("someone@acme.it", "Delivery Status Notification")
    with smtplib.SMTP("127.0.0.1", served.port, timeout=10) as client:
        client.sendmail("<>", ["hd@example.com"], msg.as_bytes())
    served.wait_settled(spooled(served))
    [row] = [r for r in served.json("spool", "list") if r["message_id"] == msg["Message-ID"]]
    assert row["state"] == "ignored" and row["outcome"].startswith("bounce")
