"""Pipeline behaviour as a help-desk operator sees it (SPEC §2-4, §8), in process.

Each test runs the real pipeline on a fresh SQLite desk with a fake clock (tests/desk.py)
and checks what an operator would check: ticket numbers, which company a ticket went
to, which mail threads onto which ticket and who may write there, deduplication, the
auto-reply rate limit, what staff and customers receive, and failed-mail recovery.
"""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest
from sqlalchemy.exc import IntegrityError

from mailgate import pipeline, spool
from mailgate.db import session_scope
from mailgate.views import show_ticket
from tests.desk import Desk
from tests.helpers import mail


@pytest.fixture
def desk(tmp_path) -> Desk:
    return Desk(tmp_path)


def ticket_view(desk: Desk, number: int) -> dict:
    with session_scope(desk.svc.engine) as session:
        view = show_ticket(session, number)
    assert view is not None, f"no ticket #{number}"
    return view


def event_kinds(desk: Desk, number: int) -> list[str]:
    return [e["kind"] for e in ticket_view(desk, number)["events"]]


def templates_to(desk: Desk, address: str) -> list[str]:
    return [t for (t,) in desk.home.query("SELECT template FROM outbox WHERE \"to\" = ?", address)]


def plain_text(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def open_printer_ticket(desk: Desk, sender: str = "mario@acme.it", **kw) -> EmailMessage:
    original = mail(sender, "Printer", **kw)
    assert desk.deliver(original).outcome == "created"
    return original


# --- numbering -----------------------------------------------------------------------

def test_ticket_numbers_are_sequential_from_10000(desk):
    numbers = [desk.deliver(mail("mario@acme.it", f"Problem {i}")).ticket for i in range(3)]
    assert numbers == [10000, 10001, 10002]


def test_first_number_is_configurable(tmp_path):
    desk = Desk(tmp_path, extra_config="[tickets]\nfirst_number = 50000")
    assert [desk.deliver(mail("mario@acme.it", f"P{i}")).ticket for i in range(2)] == [
        50000, 50001]


# --- identification and language ------------------------------------------------------

def test_subdomain_sender_is_a_contact_of_the_parent_company(desk):
    result = desk.deliver(mail("x@mail.acme.it", "Printer"))
    assert result.outcome == "created"
    assert ticket_view(desk, result.ticket)["company"] == "Acme Srl"
    [reply] = desk.outbox("x@mail.acme.it")
    assert reply["Subject"] == "[#10000] Ticket aperto: Printer"


@pytest.mark.parametrize(("sender", "rcpt", "subject"), [
    ("mario@acme.it", "hd@example.com", "[#10000] Ticket aperto: Printer"),
    ("janos@beta.hu", "hd@example.com", "[#10000] Hibajegy megnyitva: Printer"),
    ("ivan@gamma.ru", "hd@example.com", "[#10000] Открыта заявка: Printer"),
    ("someone@nowhere.example", "create@example.com", "[#10000] Ticket opened: Printer"),
])
def test_auto_reply_speaks_the_company_language(desk, sender, rcpt, subject):
    assert desk.deliver(mail(sender, "Printer", to=rcpt), rcpt=rcpt).outcome == "created"
    assert [m["Subject"] for m in desk.outbox(sender)] == [subject]


# --- threading and authorization -------------------------------------------------------

def test_reply_to_our_auto_reply_threads_even_from_a_stranger(desk):
    open_printer_ticket(desk)
    [auto_reply] = desk.outbox("mario@acme.it")
    reply = mail("helper@elsewhere.example", "Re: something",
                 references=auto_reply["Message-ID"])
    result = desk.deliver(reply)
    assert (result.outcome, result.ticket) == ("threaded", 10000)
    assert len(desk.tickets()) == 1


def test_forged_message_id_with_wrong_token_does_not_thread(desk):
    open_printer_ticket(desk)
    [ticket] = desk.tickets()
    wrong = "0" * 16 if ticket.token != "0" * 16 else "1" * 16
    forged = f"<10000.{wrong}.mg123456@example.com>"
    reply = mail("guesser@elsewhere.example", "Re: Printer", to="create@example.com",
                 in_reply_to=forged, references=forged)
    result = desk.deliver(reply, rcpt="create@example.com")
    assert (result.outcome, result.ticket) == ("created", 10001)
    assert len(ticket_view(desk, 10000)["articles"]) == 1


def test_reply_to_the_customers_own_original_threads(desk):
    original = open_printer_ticket(desk, message_id="<orig-1@acme.it>")
    follow_up = mail("mario@acme.it", "Printer still broken",
                     in_reply_to=original["Message-ID"])
    result = desk.deliver(follow_up)
    assert (result.outcome, result.ticket) == ("threaded", 10000)


def test_a_cc_participant_may_reply_with_the_tag(desk):
    open_printer_ticket(desk, cc="c@consult.example")
    result = desk.deliver(mail("c@consult.example", "Re: [#10000] Printer"))
    assert (result.outcome, result.ticket) == ("threaded", 10000)
    assert "c@consult.example" in ticket_view(desk, 10000)["participants"]


def test_a_contact_of_another_company_cannot_write_on_the_ticket(desk):
    open_printer_ticket(desk)
    result = desk.deliver(mail("ivan@gamma.ru", "Re: [#10000] Printer"))
    assert (result.outcome, result.ticket) == ("created", 10001)
    assert ticket_view(desk, 10001)["company"] == "Gamma OOO"
    assert len(ticket_view(desk, 10000)["articles"]) == 1
    assert "refused" in event_kinds(desk, 10000)


def test_staff_reply_threads_without_telling_staff(desk):
    open_printer_ticket(desk)
    result = desk.deliver(mail("alice@example.com", "Re: [#10000] Printer"))
    # Unauthenticated here (no Authentication-Results): kept on the ticket, internal.
    assert result.ticket == 10000 and result.outcome.startswith("staff mail refused")
    assert ticket_view(desk, 10000)["articles"][1]["internal"] is True
    assert "staff_customer_reply" not in templates_to(desk, "staff@example.com")
    # whereas a customer's reply is announced to staff
    desk.deliver(mail("mario@acme.it", "Re: [#10000] Printer"))
    assert templates_to(desk, "staff@example.com").count("staff_customer_reply") == 1


# --- idempotency -------------------------------------------------------------------------

def test_same_message_id_twice_is_one_ticket(desk):
    msg = mail("mario@acme.it", "Printer")
    assert desk.deliver(msg).outcome == "created"
    assert desk.deliver(msg) is None
    assert len(desk.tickets()) == 1
    assert len(ticket_view(desk, 10000)["articles"]) == 1


def without_message_id(body: str) -> bytes:
    msg = mail("mario@acme.it", "Printer", body)
    del msg["Message-ID"]
    return bytes(msg)


def test_mail_without_message_id_dedupes_by_its_bytes(desk):
    raw = without_message_id("Hello\n")
    assert desk.deliver(raw).outcome == "created"
    assert desk.deliver(raw) is None
    assert len(desk.tickets()) == 1
    assert desk.deliver(without_message_id("Hello again\n")).outcome == "created"
    assert len(desk.tickets()) == 2


# --- outbound mail -----------------------------------------------------------------------

def test_auto_replies_to_one_address_are_rate_limited(desk):
    results = [desk.deliver(mail("mario@acme.it", f"Problem {i}")) for i in range(6)]
    assert [r.outcome for r in results] == ["created"] * 6
    assert templates_to(desk, "mario@acme.it") == ["auto_reply"] * 5
    assert "auto_mail_suppressed" in event_kinds(desk, results[5].ticket)
    assert "auto_mail_suppressed" not in event_kinds(desk, results[4].ticket)

    desk.clock.advance(minutes=61)
    desk.deliver(mail("mario@acme.it", "Problem 7"))
    assert templates_to(desk, "mario@acme.it") == ["auto_reply"] * 6


def test_no_auto_reply_to_a_noreply_address(desk):
    result = desk.deliver(mail("noreply@acme.it", "Backup report"))
    assert result.outcome == "created"
    assert desk.outbox("noreply@acme.it") == []
    [event] = [e for e in ticket_view(desk, result.ticket)["events"]
               if e["kind"] == "auto_mail_suppressed"]
    assert "no-reply" in event["detail"]


def test_staff_get_the_customers_text_and_the_customer_a_threaded_answer(desk):
    original = mail("mario@acme.it", "Printer", "The printer on floor 2 prints blank pages.\n")
    desk.deliver(original)
    [staff_mail] = desk.outbox("staff@example.com")
    assert staff_mail["Subject"].startswith("[#10000]")
    assert "The printer on floor 2 prints blank pages." in plain_text(staff_mail)
    [auto_reply] = desk.outbox("mario@acme.it")
    assert auto_reply["In-Reply-To"] == original["Message-ID"]
    assert "10000" in plain_text(auto_reply)


# --- failures ----------------------------------------------------------------------------

def test_a_failing_mail_is_kept_and_retried(desk, monkeypatch):
    def boom(run):
        raise RuntimeError("simulated disk on fire")

    monkeypatch.setattr(pipeline, "steps", boom)
    result = desk.deliver(mail("mario@acme.it", "Printer"))
    assert result.state == spool.FAILED
    [(state, error)] = desk.home.query("SELECT state, error FROM spool")
    assert state == "failed" and "simulated disk on fire" in error
    assert desk.tickets() == []

    monkeypatch.undo()
    [spool_id] = spool.retry(desk.svc.engine)
    retried = pipeline.process(desk.svc, spool_id)
    assert (retried.state, retried.outcome, retried.ticket) == ("processed", "created", 10000)
    assert len(desk.tickets()) == 1


# --- subjects ----------------------------------------------------------------------------

def test_ticket_subject_loses_reply_prefixes_and_unknown_tags(desk):
    result = desk.deliver(mail("mario@acme.it", "Re: AW: [#999] Printer"))
    assert (result.outcome, result.ticket) == ("created", 10000)
    assert ticket_view(desk, 10000)["subject"] == "Printer"


def test_customer_subject_cannot_inject_headers_into_our_mails(desk):
    word = base64.b64encode(b"Printer\r\nBcc: victim@evil.example").decode()
    raw = (f"From: mario@acme.it\r\nTo: hd@example.com\r\nSubject: =?x-bogus?b?{word}?=\r\n"
           f"Message-ID: <inject-1@acme.it>\r\n\r\nHello\r\n").encode()
    assert desk.deliver(raw).outcome == "created"
    queued = desk.outbox()
    assert len(queued) == 2  # auto_reply and staff_new_ticket
    assert [m["Bcc"] for m in queued] == [None, None]


def unique_violation() -> IntegrityError:
    return IntegrityError("INSERT INTO contact …", {}, Exception("UNIQUE constraint failed"))


def test_a_unique_key_taken_meanwhile_makes_the_message_run_again(desk, monkeypatch):
    # Another instance created the same new contact between this run's look-up and its
    # insert: the run fails on the unique key, and the message is processed again.
    real, raced = pipeline._claimed_run, []

    def racing(svc, session, spool_id, *message):
        if not raced:
            raced.append(spool_id)
            real(svc, session, spool_id, *message)  # its writes are rolled back with the error
            raise unique_violation()
        return real(svc, session, spool_id, *message)

    monkeypatch.setattr(pipeline, "_claimed_run", racing)
    result = desk.deliver(mail("mario@acme.it", "Two instances at once"))
    assert raced and result.outcome == "created" and result.ticket == 10000
    assert desk.home.query("SELECT state, attempts FROM spool") == [("processed", 1)]
    assert len(desk.tickets()) == 1


def test_a_unique_key_that_fails_twice_is_a_failed_message_kept_for_retry(desk, monkeypatch):
    def always(svc, session, spool_id, *message):
        raise unique_violation()

    monkeypatch.setattr(pipeline, "_claimed_run", always)
    result = desk.deliver(mail("mario@acme.it", "A real bug"))
    assert result.state == "failed"
    [(state, error)] = desk.home.query("SELECT state, error FROM spool")
    assert state == "failed" and "IntegrityError" in error
