"""Staff mail commands (SPEC §6) as a help-desk operator sees them, in process.

Each test runs the real pipeline on a fresh SQLite desk with a fake clock (tests/desk.py)
with ``staff.auth = "none"`` (authentication has its own tests in
tests/e2e/test_staff_auth_e2e.py) and checks what an operator checks: the ticket as
``tickets show`` gives it (status, priority, participants, articles, events), and the
mails queued in the outbox with their recipients, subjects, headers and text.
"""

from __future__ import annotations

import email
import email.policy
import logging
from email.message import EmailMessage

import pytest
from sqlmodel import select

from mailgate.db import session_scope
from mailgate.models import Outbox
from tests import dbs
from tests.desk import Desk
from tests.flowkit import at_once
from tests.helpers import mail

NO_AUTH = 'auth = "none"\n'
ALICE = "alice@example.com"
MARIO = "mario@acme.it"

# Acme with an hour package, a manager and an Italian calendar; the shipped priority
# labels (P1plus shows as "P1+").
RULES_COMPANIES = """
[[company]]
name = "Acme Srl"
domains = ["acme.it"]
language = "it"
plan = "standard"
calendar = "it-office"
prepaid_hours = 2.0
hours_low_threshold = 1.0
managers = ["boss@acme.it"]

[[company]]
name = "Beta Kft"
domains = ["beta.hu"]
language = "hu"
plan = "standard"
"""

RULES_SLA = """
[plan.standard]
default_priority = "P3"
[plan.standard.priority.P1plus]
label = "P1+"
[plan.standard.priority.P1]
[plan.standard.priority.P2]
[plan.standard.priority.P3]
[plan.standard.priority.P4]
[plan.standard.priority.P7]

[calendar.it-office]
timezone = "Europe/Rome"
"""


@pytest.fixture
def desk(tmp_path) -> Desk:
    return Desk(tmp_path, extra_config=NO_AUTH)


@pytest.fixture
def rules_desk(tmp_path) -> Desk:
    """A Desk with prepaid hours, a calendar and the shipped priority labels."""
    return Desk(tmp_path, extra_config=NO_AUTH,
                rules={"companies.toml": RULES_COMPANIES, "sla.toml": RULES_SLA})


# --- helpers ------------------------------------------------------------------------------

def view(desk: Desk, number: int = 10000) -> dict:
    return desk.view(number)


def events(desk: Desk, kind: str, number: int = 10000) -> list[dict]:
    return [e for e in view(desk, number)["events"] if e["kind"] == kind]


def sent(desk: Desk, to: str, template: str | None = None) -> list[EmailMessage]:
    """Queued mails to ``to`` (of one template), parsed, oldest first."""
    with session_scope(desk.svc.engine) as session:
        query = select(Outbox).where(Outbox.to == to).order_by(Outbox.id)
        if template:
            query = query.where(Outbox.template == template)
        rows = list(session.exec(query))
    return [email.message_from_bytes(r.message, policy=email.policy.default) for r in rows]


def templates_to(desk: Desk, address: str) -> list[str]:
    return [t for (t,) in desk.home.query('SELECT template FROM outbox WHERE "to" = ?', address)]


def text(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def open_ticket(desk: Desk, sender: str = MARIO, subject: str = "Printer", **kw) -> int:
    result = desk.deliver(mail(sender, subject, **kw))
    assert result.outcome == "created"
    return result.ticket


def staff(desk: Desk, body: str, number: int = 10000, subject: str = "Printer"):
    return desk.deliver(mail(ALICE, f"Re: [#{number}] {subject}", body))


def refused(desk: Desk, number: int = 10000) -> str:
    """The one command_error alice got; asserts the ticket recorded the refusal."""
    assert len(events(desk, "commands_refused", number)) == 1
    [error] = sent(desk, ALICE, "command_error")
    assert f"[#{number}]" in error["Subject"]
    return text(error)


# --- #status ------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "subject"), [
    ("open", "[#10000] Ticket preso in carico: Printer"),
    ("waiting", "[#10000] Ticket in attesa: Printer"),
    ("resolved", "[#10000] Ticket risolto: Printer"),
    ("closed", "[#10000] Ticket chiuso: Printer"),
])
def test_status_sends_the_phase_mail_to_requester_and_cc(desk, status, subject):
    open_ticket(desk, cc="anna@acme.it")
    assert staff(desk, f"#status {status}\n").outcome == "staff mail: 1 command(s)"
    assert view(desk)["status"] == status
    [event] = events(desk, "status")
    assert (event["actor"], event["detail"]) == (ALICE, f"new → {status}")
    for person in (MARIO, "anna@acme.it"):
        [phase] = sent(desk, person, f"status_{status}")
        assert phase["Subject"] == subject
        assert phase["Auto-Submitted"] == "auto-replied"
    assert "reply" not in templates_to(desk, MARIO)  # no text below the command


def test_phase_mail_is_threaded_on_the_customers_mail(desk):
    desk.deliver(mail(MARIO, "Printer", message_id="<first@acme.it>"))
    staff(desk, "#status open\n")
    [phase] = sent(desk, MARIO, "status_open")
    assert phase["Reply-To"] == "hd@example.com"
    assert phase["Message-ID"].startswith("<10000.") and phase["Message-ID"].endswith(
        "@example.com>")
    assert phase["In-Reply-To"] == "<first@acme.it>"
    assert "<first@acme.it>" in phase["References"]


# --- #priority, #assign, #category --------------------------------------------------------

def test_priority_p2(desk):
    open_ticket(desk)
    staff(desk, "#priority P2\n")
    assert view(desk)["priority"] == "P2"
    assert events(desk, "priority")[0]["detail"] == "P3 → P2"


def test_priority_by_its_label_p1plus(rules_desk):
    open_ticket(rules_desk)
    staff(rules_desk, "#priority P1+\n")
    assert view(rules_desk)["priority"] == "P1plus"
    assert events(rules_desk, "priority")[0]["detail"] == "P3 → P1+"


def test_unknown_priority_is_refused_listing_the_valid_ones(rules_desk):
    open_ticket(rules_desk)
    staff(rules_desk, "#priority P9\n")
    assert view(rules_desk)["priority"] == "P3"
    body = refused(rules_desk)
    assert "line 1: #priority P9: needs one of P1+, P1, P2, P3, P4, P7" in body


@pytest.mark.parametrize("who", ["me", ALICE])
def test_assign(desk, who):
    open_ticket(desk)
    staff(desk, f"#assign {who}\n")
    assert view(desk)["assignee"] == ALICE
    assert events(desk, "assignee")[0]["detail"] == f"- → {ALICE}"


def test_assign_to_a_non_staff_address_is_refused(desk):
    open_ticket(desk)
    staff(desk, "#assign mario@acme.it\n")
    assert view(desk)["assignee"] is None
    assert "mario@acme.it is not a staff member" in refused(desk)


def test_category(desk):
    open_ticket(desk)
    staff(desk, "#category user\n")
    assert view(desk)["category"] == "user"


def test_unknown_category_is_refused(desk):
    open_ticket(desk)
    staff(desk, "#category hardware\n")
    assert view(desk)["category"] is None
    assert "#category hardware: needs one of user, system, infrastructure" in refused(desk)


# --- #time, #eta --------------------------------------------------------------------------

@pytest.mark.parametrize(("spent", "hours"), [
    # "rounded up to 0.25 h" (SPEC §5): 20 minutes are a third of an hour, so 0.5 h.
    ("1h30m", 1.5), ("0.5h", 0.5), ("20m", 0.5), ("15m", 0.25), ("10m", 0.25),
    ("1h1m", 1.25)])
def test_time_is_rounded_up_to_quarter_hours(desk, spent, hours):
    open_ticket(desk)
    staff(desk, f"#time {spent}\n")
    assert view(desk)["time_spent_hours"] == hours
    assert events(desk, "time")[0]["detail"] == f"{hours:.2f} h"


def test_time_accumulates(desk):
    open_ticket(desk)
    staff(desk, "#time 1h30m\n")
    staff(desk, "#time 10m\n")
    assert view(desk)["time_spent_hours"] == 1.75
    assert [e["detail"] for e in events(desk, "time")] == ["1.50 h", "0.25 h"]


def test_eta_is_company_time_stored_in_utc(rules_desk):
    open_ticket(rules_desk)
    staff(rules_desk, "#eta 2026-11-25 14:00\n")
    eta = view(rules_desk)["eta"]
    assert eta.endswith("+00:00")
    assert eta.startswith("2026-11-25T13:00")  # 14:00 in Rome is CET, UTC+1


def test_malformed_eta_is_refused(desk):
    open_ticket(desk)
    staff(desk, "#eta next friday\n")
    assert view(desk)["eta"] is None
    assert "needs a date and time like 2026-11-25 14:00" in refused(desk)


# --- #note and the reply ------------------------------------------------------------------

def test_note_is_internal_and_not_sent_to_the_customer(desk):
    open_ticket(desk, cc="anna@acme.it")
    staff(desk, "#note\nThe toner cartridge is not an original one.\n")
    article = view(desk)["articles"][-1]
    assert article["internal"] is True
    assert "not an original one" in article["text"]
    assert templates_to(desk, MARIO) == ["auto_reply"]
    assert templates_to(desk, "anna@acme.it") == []


def test_staff_text_without_note_is_the_reply_to_the_customer(desk):
    open_ticket(desk, cc="anna@acme.it")
    staff(desk, "#status open\n\nWe are replacing the fuser this afternoon.\n")
    assert view(desk)["articles"][-1]["internal"] is False
    for person in (MARIO, "anna@acme.it"):
        assert templates_to(desk, person)[-2:] == ["status_open", "reply"]
        [reply] = sent(desk, person, "reply")
        assert "We are replacing the fuser this afternoon." in text(reply)
        assert "Alice Rossi" in text(reply)


def test_quoted_commands_never_run_and_the_text_is_a_threaded_reply(desk):
    open_ticket(desk)
    follow_up = mail(MARIO, "Re: [#10000] Printer", "Still blank pages.\n")
    desk.deliver(follow_up)
    staff(desk, "Thanks, done.\n\n> #status closed\n")
    assert view(desk)["status"] == "new"
    [reply] = sent(desk, MARIO, "reply")
    assert "Thanks, done." in text(reply)
    assert reply["In-Reply-To"] == follow_up["Message-ID"]
    assert reply["Subject"].startswith("[#10000] ")
    assert reply["Auto-Submitted"] is None


def test_a_customers_command_line_is_ordinary_text(desk):
    open_ticket(desk)
    result = desk.deliver(mail(MARIO, "Re: [#10000] Printer", "#status closed\nPlease.\n"))
    assert result.outcome == "threaded"
    shown = view(desk)
    assert shown["status"] == "new"
    assert shown["articles"][-1]["text"].startswith("#status closed")
    assert events(desk, "status") == []


# --- #merge, #link, #cc -------------------------------------------------------------------

def test_merge_moves_articles_and_participants_and_later_mail(desk):
    open_ticket(desk, cc="anna@acme.it")
    open_ticket(desk, "luigi@acme.it", "Scanner")
    staff(desk, "#merge 10001\n")
    old, new = view(desk, 10000), view(desk, 10001)
    assert (old["status"], old["merged_into"]) == ("merged", 10001)
    assert old["articles"] == []
    assert [a["from"] for a in new["articles"]] == [MARIO, "luigi@acme.it", ALICE]
    assert {MARIO, "anna@acme.it", "luigi@acme.it"} <= set(new["participants"])
    assert events(desk, "status")[0]["detail"] == "new → merged (into 10001)"

    result = desk.deliver(mail(MARIO, "Re: [#10000] Printer", "Any news?\n"))
    assert result.ticket == 10001
    assert view(desk, 10001)["articles"][-1]["text"].startswith("Any news?")


@pytest.mark.skipif(not dbs.POSTGRESQL, reason="SQLite has one writer at a time (turns.py); "
                    "on PostgreSQL two workers can hold the two tickets at once")
def test_two_tickets_merged_into_each_other_at_once_merge_once(desk, monkeypatch, caplog):
    """Two staff mails merge two tickets into each other at the same moment.  One merge
    happens and the other is refused: if both happened, each ticket would point at the
    other and later mail would reach neither.  Each transaction holds one ticket and
    waits for the other's; PostgreSQL fails one of them, which runs again at once
    (not after a back-off, as from an outage) and finds its ticket merged."""
    open_ticket(desk)
    open_ticket(desk, "luigi@acme.it", "Scanner")
    first = desk.spool(mail(ALICE, "Re: [#10000] Printer", "#merge 10001\n"))
    second = desk.spool(mail(ALICE, "Re: [#10001] Scanner", "#merge 10000\n"))
    caplog.set_level(logging.INFO, logger="mailgate.pipeline")
    outcomes = at_once(desk, monkeypatch, first, second)
    refused, done = sorted(result.outcome for result in outcomes.values())
    assert done == "staff mail: 1 command(s)"
    assert refused.startswith("staff mail refused: line 1: #merge ")
    assert "is merged into" in refused
    assert "met another one's locks (40P01); running it again" in caplog.text
    shown = {n: view(desk, n) for n in (10000, 10001)}
    assert sorted(v["status"] for v in shown.values()) == ["merged", "new"]
    [live] = [n for n, v in shown.items() if v["status"] == "new"]
    assert desk.deliver(mail(MARIO, "Re: [#10000] Printer", "Any news?\n")).ticket == live


@pytest.mark.parametrize(("command", "why"), [
    ("#merge 99999999999", "#merge 99999999999: there is no ticket 99999999999"),
    ("#link 99999999999999999999999",
     "#link 99999999999999999999999: there is no ticket 99999999999999999999999"),
    ("#merge ²", "#merge ²: needs a ticket number"),
    ("#time 99999999999h", "#time 99999999999h: '99999999999h' is longer than any duration"),
])
def test_a_number_too_big_for_a_ticket_or_a_duration_is_a_command_error(desk, command, why):
    # These failed the whole mail (an integer or a timedelta overflowed, int("²")
    # raised), so the staff member heard nothing; now they are told, like any typo.
    open_ticket(desk)
    result = staff(desk, f"{command}\n")
    assert result.state == "processed"
    assert result.outcome.startswith(f"staff mail refused: line 1: {why}")
    assert why in refused(desk)
    assert view(desk)["status"] == "new"


def test_merge_into_another_companys_ticket_is_refused(desk):
    open_ticket(desk)
    open_ticket(desk, "janos@beta.hu", "Nyomtató")
    staff(desk, "#merge 10001\n")
    assert view(desk)["status"] == "new"
    assert len(view(desk, 10001)["articles"]) == 1
    assert "ticket 10001 belongs to another company" in refused(desk)


def test_link_relates_both_tickets(desk):
    open_ticket(desk)
    open_ticket(desk, "luigi@acme.it", "Scanner")
    staff(desk, "#link 10001\n")
    assert view(desk, 10000)["links"] == [10001]
    assert view(desk, 10001)["links"] == [10000]
    assert events(desk, "link", 10001)[0]["detail"] == "related to 10000"


def test_cc_add_then_the_next_phase_mail_goes_there_too(desk):
    open_ticket(desk)
    staff(desk, "#cc add x@acme.it\n")
    assert "x@acme.it" in view(desk)["participants"]
    staff(desk, "#status open\n")
    assert templates_to(desk, "x@acme.it") == ["status_open"]


def test_cc_remove_stops_the_phase_mails(desk):
    open_ticket(desk, cc="anna@acme.it")
    staff(desk, "#cc remove anna@acme.it\n")
    assert view(desk)["participants"] == [MARIO]
    staff(desk, "#status open\n")
    assert templates_to(desk, "anna@acme.it") == []
    assert templates_to(desk, MARIO) == ["auto_reply", "status_open"]


# --- all or nothing, order, transcript ----------------------------------------------------

def test_one_bad_command_applies_none(desk):
    open_ticket(desk)
    staff(desk, "#status resolved\n#priority P9\n\nFixed the printer.\n")
    shown = view(desk)
    assert (shown["status"], shown["priority"]) == ("new", "P3")
    assert shown["articles"][-1]["internal"] is True
    assert templates_to(desk, MARIO) == ["auto_reply"]
    body = refused(desk)
    assert "line 2: #priority P9: needs one of" in body
    assert "#status open|waiting|resolved|closed" in body  # the valid commands
    assert "#cc add x@acme.it" in body


def test_commands_are_checked_in_order_closed_then_open_is_valid(desk):
    open_ticket(desk)
    staff(desk, "#status closed\n#status open\n")
    assert view(desk)["status"] == "open"
    assert [e["detail"] for e in events(desk, "status")] == ["new → closed", "closed → open"]
    assert templates_to(desk, MARIO) == ["auto_reply", "status_closed", "status_open"]


def test_a_merged_ticket_cannot_change_status_in_the_same_mail(desk):
    open_ticket(desk)
    open_ticket(desk, "luigi@acme.it", "Scanner")
    staff(desk, "#merge 10001\n#status open\n")
    assert view(desk)["status"] == "new"
    assert view(desk)["merged_into"] is None
    assert "line 2: #status open: the ticket is merged: it cannot become open" in refused(desk)


def test_transcript_always_answers_every_command_mail(tmp_path):
    desk = Desk(tmp_path, extra_config=NO_AUTH + 'transcript = "always"\n')
    open_ticket(desk)
    staff(desk, "#priority P2\n#category user\n")
    [result] = sent(desk, ALICE, "command_result")
    assert result["Subject"] == "[#10000] Commands applied: Printer"
    assert "> #priority P2: P3 → P2" in text(result)
    assert "> #category user: - → user" in text(result)


def test_transcript_errors_is_silent_on_success(desk):
    open_ticket(desk)
    staff(desk, "#priority P2\n")
    assert templates_to(desk, ALICE) == []


# --- hour packages and manager requests ---------------------------------------------------

def test_time_deducts_from_prepaid_hours_and_warns_the_manager_once(rules_desk):
    open_ticket(rules_desk)
    staff(rules_desk, "#time 45m\n")  # 1.25 h left
    assert templates_to(rules_desk, "boss@acme.it") == []
    staff(rules_desk, "#time 30m\n")  # 0.75 h left, under 1.0
    [low] = sent(rules_desk, "boss@acme.it", "hours_low")
    assert low["Subject"].startswith("[#10000] Ore prepagate in esaurimento")
    assert "Ore residue: 0.75 su 2.00" in text(low)
    staff(rules_desk, "#time 15m\n")  # 0.50 h left: already told
    assert templates_to(rules_desk, "boss@acme.it") == ["hours_low"]
    assert [e["detail"] for e in events(rules_desk, "hours_low")] == ["0.75 h left of 2.00"]


def test_manager_gets_the_list_of_the_companys_tickets(desk):
    open_ticket(desk)
    open_ticket(desk, "janos@beta.hu", "Nyomtató")
    open_ticket(desk, "luigi@acme.it", "Scanner")
    result = desk.deliver(mail("boss@acme.it", "#tickets", "\n"))
    assert result.ticket is None
    [listing] = sent(desk, "boss@acme.it", "ticket_list")
    body = text(listing)
    assert "#10000" in body and "#10002" in body
    assert "10001" not in body
    assert len(desk.tickets()) == 3


def test_tickets_from_a_contact_who_is_not_a_manager_opens_a_ticket(desk):
    result = desk.deliver(mail(MARIO, "#tickets", "\n"))
    assert (result.outcome, result.ticket) == ("created", 10000)
    assert templates_to(desk, MARIO) == ["auto_reply"]

