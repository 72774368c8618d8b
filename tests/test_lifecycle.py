"""Ticket phases (SPEC §4): the transition table, confirmation and reopening by the
customer, ``#close``, and the event log that records every change.

The table is checked on ``phases.check`` directly; everything else runs the real
pipeline on a fresh SQLite desk (tests/desk.py) with ``staff.auth = "none"`` and looks
at the ticket as ``tickets show`` gives it and at the mails queued in the outbox.
"""

from __future__ import annotations

import email
import email.policy
import itertools

import pytest
from sqlmodel import select

from mailgate import phases
from mailgate.db import session_scope
from mailgate.models import Outbox
from tests.desk import Desk
from tests.helpers import mail

NO_AUTH = 'auth = "none"\n'
ALICE = "alice@example.com"
MARIO = "mario@acme.it"

# SPEC §4: new → open → waiting → resolved → closed, and merged.  Any phase may be left
# for a later one or for waiting/open again; resolved and closed may be reopened; a
# merged ticket is final.
EXPECTED = {
    "new": {"open", "waiting", "resolved", "closed", "merged"},
    "open": {"waiting", "resolved", "closed", "merged"},
    "waiting": {"open", "resolved", "closed", "merged"},
    "resolved": {"open", "waiting", "closed", "merged"},
    "closed": {"open"},
    "merged": set(),
}
STATUSES = list(EXPECTED)


@pytest.fixture
def desk(tmp_path) -> Desk:
    return Desk(tmp_path, extra_config=NO_AUTH)


def view(desk: Desk, number: int = 10000) -> dict:
    return desk.view(number)


def status_details(desk: Desk, number: int = 10000) -> list[str]:
    return [e["detail"] for e in view(desk, number)["events"] if e["kind"] == "status"]


def templates_to(desk: Desk, address: str) -> list[str]:
    return [t for (t,) in desk.home.query('SELECT template FROM outbox WHERE "to" = ?', address)]


def sent(desk: Desk, to: str, template: str) -> list[email.message.EmailMessage]:
    with session_scope(desk.svc.engine) as session:
        rows = list(session.exec(select(Outbox).where(Outbox.to == to, Outbox.template == template)
                                 .order_by(Outbox.id)))
    return [email.message_from_bytes(r.message, policy=email.policy.default) for r in rows]


def text(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def open_ticket(desk: Desk, sender: str = MARIO, subject: str = "Printer", **kw) -> int:
    result = desk.deliver(mail(sender, subject, **kw))
    assert result.outcome == "created"
    return result.ticket


def staff(desk: Desk, body: str, number: int = 10000, subject: str = "Printer"):
    result = desk.deliver(mail(ALICE, f"Re: [#{number}] {subject}", body))
    assert result.outcome.startswith("staff mail: "), result.outcome
    return result


def reply(desk: Desk, body: str, sender: str = MARIO, number: int = 10000,
          subject: str = "Printer"):
    return desk.deliver(mail(sender, f"Re: [#{number}] {subject}", body))


def resolved_ticket(desk: Desk, sender: str = MARIO, **kw) -> int:
    number = open_ticket(desk, sender, **kw)
    staff(desk, "#status resolved\n\nThe fuser has been replaced.\n", number)
    assert view(desk, number)["status"] == "resolved"
    return number


# --- the transition table -----------------------------------------------------------------

@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATUSES, STATUSES)))
def test_transition_table(before, after):
    if after in EXPECTED[before]:
        phases.check(before, after)
    else:
        refusal = f"the ticket is {before}: it cannot become"
        with pytest.raises(phases.TransitionError, match=refusal):
            phases.check(before, after)


def test_unknown_status_is_refused_listing_the_known_ones():
    with pytest.raises(phases.TransitionError, match="one of open, waiting, resolved, closed"):
        phases.check("open", "finished")


# --- confirmation and reopening -----------------------------------------------------------

def test_resolved_mail_asks_for_confirmation_with_close(desk):
    resolved_ticket(desk)
    [resolved] = sent(desk, MARIO, "status_resolved")
    assert resolved["Subject"] == "[#10000] Ticket risolto: Printer"
    assert "#close" in text(resolved)
    assert '"ok chiudete"' in text(resolved)  # the first Italian confirm phrase


@pytest.mark.parametrize(("sender", "words"), [
    (MARIO, "Ok chiudete pure, grazie"),
    ("ivan@gamma.ru", "Закрывайте, спасибо"),
    ("janos@beta.hu", "Lezárható, köszönöm"),
])
def test_customer_confirmation_closes_a_resolved_ticket(desk, sender, words):
    resolved_ticket(desk, sender)
    result = reply(desk, f"{words}\n\n> quoted resolution\n", sender)
    assert result.outcome == "threaded, closed by the customer"
    assert view(desk)["status"] == "closed"
    assert status_details(desk)[-1] == "resolved → closed (confirmed by the customer)"
    assert templates_to(desk, sender)[-1] == "status_closed"


def test_configured_confirm_words_close(tmp_path):
    desk = Desk(tmp_path, extra_config=NO_AUTH + '\n[tickets]\nconfirm_words = ["va bene così"]\n')
    resolved_ticket(desk)
    assert '"va bene così"' in text(sent(desk, MARIO, "status_resolved")[0])
    reply(desk, "Va bene così, grazie mille.\n")
    assert view(desk)["status"] == "closed"


def test_a_complaint_reopens_a_resolved_ticket_and_tells_staff(desk):
    resolved_ticket(desk)
    told = templates_to(desk, "staff@example.com").count("staff_customer_reply")
    result = reply(desk, "Non funziona ancora, stampa pagine bianche.\n")
    assert result.outcome == "threaded, reopened"
    assert view(desk)["status"] == "open"
    assert status_details(desk)[-1] == "resolved → open (reopened by the customer's reply)"
    assert templates_to(desk, "staff@example.com").count("staff_customer_reply") == told + 1
    assert "status_open" not in templates_to(desk, MARIO)  # their own mail is their notice


def test_a_negated_phrase_does_not_confirm(desk):
    resolved_ticket(desk)
    reply(desk, "Non potete chiudere, il problema persiste.\n")
    assert view(desk)["status"] == "open"


def test_a_reply_to_a_closed_ticket_reopens_it(desk):
    open_ticket(desk)
    staff(desk, "#status closed\n")
    reply(desk, "La stampante si è di nuovo bloccata.\n")
    assert view(desk)["status"] == "open"
    assert status_details(desk) == [
        "new → closed", "closed → open (reopened by the customer's reply)"]


@pytest.mark.parametrize("body", ["#close\n", "Ok chiudete pure, grazie\n"])
def test_a_confirmation_of_a_closed_ticket_does_not_reopen_it(desk, body):
    resolved_ticket(desk)
    staff(desk, "#status closed\n")
    reply(desk, body)
    assert view(desk)["status"] == "closed"



def test_a_customers_reopening_is_not_the_first_response(desk):
    open_ticket(desk)
    staff(desk, "#status resolved\n")  # resolved without a word to the customer
    desk.clock.advance(hours=3)
    reply(desk, "Non funziona ancora.\n", "luigi@acme.it")  # a colleague of the requester
    [ticket] = desk.tickets()
    assert ticket.status == "open"
    assert ticket.first_response_at != desk.clock()  # SPEC §5: a staff reply or #status open

# --- #close -------------------------------------------------------------------------------

@pytest.mark.parametrize(("sender", "closes"), [
    (MARIO, True),             # the requester
    ("anna@acme.it", True),    # a participant (in Cc of the first mail)
    ("boss@acme.it", True),    # a manager of the company
    ("luigi@acme.it", False),  # a colleague who is not on the ticket
])
def test_close_command_of_a_customer(desk, sender, closes):
    open_ticket(desk, cc="anna@acme.it")
    staff(desk, "#status open\n")
    reply(desk, "#close\nGrazie.\n", sender)
    assert view(desk)["status"] == ("closed" if closes else "open")
    assert view(desk)["articles"][-1]["from"] == sender  # the mail is kept either way


def test_a_colleague_not_on_the_ticket_cannot_confirm_with_words_either(desk):
    resolved_ticket(desk)
    reply(desk, "Ok chiudete pure, grazie\n", "luigi@acme.it")
    assert view(desk)["status"] != "closed"


# --- the event log ------------------------------------------------------------------------

def test_every_change_is_an_event_with_actor_and_detail(desk):
    open_ticket(desk)
    staff(desk, "#status open\n#priority P2\n#assign me\n#time 30m\n\nOn it.\n")
    reply(desk, "Grazie!\n")
    log = view(desk)["events"]
    assert [e["kind"] for e in log] == [
        "created", "status", "priority", "assignee", "time", "staff_mail", "article"]
    for event in log:
        assert event["actor"] and event["detail"] and event["at"], event
    assert [(e["actor"], e["detail"]) for e in log[1:5]] == [
        (ALICE, "new → open"), (ALICE, "P3 → P2"), (ALICE, f"- → {ALICE}"), (ALICE, "0.50 h")]
    assert log[0]["actor"] == log[-1]["actor"] == MARIO


def test_tickets_show_json_has_events_and_articles(desk):
    open_ticket(desk)
    staff(desk, "#note\nCalled the vendor.\n")
    staff(desk, "#status resolved\n\nDone.\n")
    shown = desk.home.json("tickets", "show", "10000")
    assert shown["number"] == 10000 and shown["status"] == "resolved"
    assert [(a["from"], a["internal"]) for a in shown["articles"]] == [
        (MARIO, False), (ALICE, True), (ALICE, False)]
    assert "Called the vendor." in shown["articles"][1]["text"]
    kinds = [e["kind"] for e in shown["events"]]
    assert kinds[0] == "created" and "status" in kinds
    assert {"kind", "at", "actor", "detail"} <= set(shown["events"][0])
