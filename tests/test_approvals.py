"""Requests that need a company manager's written approval (permission changes, device
orders): the ticket waits with reason ``approval``, the managers get
``approval_request``, a manager's ``#approve`` / ``#reject`` moves it on, and nobody
else (not another contact, not staff) can.

In process on a Desk (staff.auth none: authentication has its own tests), and once end
to end over SMTP against ``mailgate serve``.
"""

from __future__ import annotations

import pytest

from tests import dbs
from tests.desk import Desk
from tests.flowkit import (
    ALICE,
    BOSS,
    MARIO,
    NO_AUTH,
    STAFF,
    Served,
    at_once,
    body,
    events,
    sent,
    templates_to,
)
from tests.helpers import mail, make_home, serving

RULES = """
[[rule]]
name = "permissions"
when = { body = "(?i)abilitare" }
set = { category = "access" }

[[rule]]
name = "licences"
when = { subject = "(?i)licenza" }
set = { needs_approval = true }
"""
REQUEST = "Potete abilitare Anna alla cartella Contabilità?"


@pytest.fixture
def desk(tmp_path) -> Desk:
    return Desk(tmp_path, extra_config=NO_AUTH, rules={"triage.toml": RULES})


def ask_access(desk: Desk) -> None:
    result = desk.deliver(mail(MARIO, "Accesso Contabilità", f"{REQUEST}\n"))
    assert (result.outcome, result.ticket) == ("created", 10000)


def manager_reply(desk: Desk, text: str, sender: str = BOSS):
    """``sender`` answers the approval request (threaded by its Message-ID)."""
    [request] = sent(desk, BOSS, "approval_request")
    return desk.deliver(mail(sender, f"Re: {request['Subject']}", text,
                             in_reply_to=request["Message-ID"]))


def test_access_request_waits_for_the_managers_approval(desk):
    ask_access(desk)
    shown = desk.view()
    assert (shown["status"], shown["category"], shown["approval"]) == (
        "waiting", "access", "pending")
    assert shown["waiting_reason"] == "approval" and shown["in_writing"] is True
    [asked] = events(shown, "approval")
    assert (asked["actor"], asked["detail"]) == ("rules", "requested")
    [request] = sent(desk, BOSS, "approval_request")
    assert request["Subject"] == "[#10000] Richiesta da approvare: Accesso Contabilità"
    assert request["Message-ID"].startswith("<10000.")  # a reply threads by its token
    assert request["Auto-Submitted"] == "auto-generated"
    text = body(request)
    assert REQUEST in text and "#approve" in text and "#reject" in text
    assert "modifica dei permessi di accesso" in text and "per iscritto" not in text
    assert templates_to(desk, MARIO) == ["auto_reply", "approval_pending"]
    assert BOSS in body(sent(desk, MARIO, "approval_pending")[0])


def test_a_managers_approve_opens_it_and_tells_requester_and_staff(desk):
    ask_access(desk)
    result = manager_reply(desk, "#approve\n\nVa bene.\n")
    assert result.outcome == "threaded, approval granted"
    shown = desk.view()
    assert (shown["status"], shown["approval"], shown["waiting_reason"]) == (
        "open", "granted", None)
    assert events(shown, "approval")[-1]["detail"] == f"granted by {BOSS}"
    [granted] = sent(desk, MARIO, "approval_granted")
    assert granted["Subject"] == "[#10000] Richiesta approvata: Accesso Contabilità"
    assert BOSS in body(granted)
    [to_staff] = sent(desk, STAFF, "approval_granted")
    assert to_staff["Subject"] == "[#10000] Request approved: Accesso Contabilità"
    # The decision is the staff's news about this mail, not a customer reply.
    assert templates_to(desk, STAFF) == ["staff_new_ticket", "approval_granted"]


def test_a_managers_reject_closes_it_with_the_reason(desk):
    ask_access(desk)
    assert manager_reply(desk, "#reject non previsto dal budget\n").outcome == (
        "threaded, approval rejected")
    shown = desk.view()
    assert (shown["status"], shown["approval"]) == ("closed", "rejected")
    assert events(shown, "approval")[-1]["detail"] == (
        f"rejected by {BOSS}: non previsto dal budget")
    [rejected] = sent(desk, MARIO, "approval_rejected")
    assert "non previsto dal budget" in body(rejected)
    assert "non previsto dal budget" in body(sent(desk, STAFF, "approval_rejected")[0])


@pytest.mark.parametrize("who", ["anna@acme.it", MARIO])
def test_a_non_managers_approve_is_refused_and_changes_nothing(desk, who):
    ask_access(desk)
    result = manager_reply(desk, "#approve\n", sender=who)
    assert result.outcome == "threaded"
    shown = desk.view()
    assert (shown["status"], shown["approval"], shown["waiting_reason"]) == (
        "waiting", "pending", "approval")
    [refused] = events(shown, "approval_refused")
    assert refused["actor"] == who
    assert refused["detail"] == f"#approve refused: {who} is not a manager of Acme Srl"
    assert not sent(desk, MARIO, "approval_granted") and not sent(desk, STAFF, "approval_granted")
    assert templates_to(desk, STAFF)[-1] == "staff_customer_reply"


def test_staff_cannot_approve_nor_open_it(desk):
    ask_access(desk)
    for command in ("#approve", "#status open", "#status resolved"):
        result = desk.deliver(mail(ALICE, "Re: [#10000] Accesso Contabilità", f"{command}\n"))
        assert result.outcome.startswith("staff mail refused: ")
        assert "staff cannot approve on the customer's behalf" in result.outcome
    shown = desk.view()
    assert (shown["status"], shown["approval"]) == ("waiting", "pending")
    assert templates_to(desk, ALICE) == ["command_error"] * 3
    assert "approval_granted" not in templates_to(desk, MARIO)


def test_a_second_decision_changes_nothing(desk):
    ask_access(desk)
    manager_reply(desk, "#approve\n")
    assert manager_reply(desk, "#reject troppo tardi\n").outcome == "threaded"
    shown = desk.view()
    assert (shown["status"], shown["approval"]) == ("open", "granted")
    assert "nothing waits for approval" in events(shown, "approval_refused")[0]["detail"]


@pytest.mark.skipif(not dbs.POSTGRESQL, reason="SQLite has one writer at a time (turns.py); "
                    "on PostgreSQL two workers can hold the same ticket at once")
def test_two_decisions_at_once_apply_one_after_the_other(desk, monkeypatch):
    """Two workers read the same waiting ticket at once: the second waits for the
    first's transaction and sees its decision.  Unlocked, both saw ``pending`` and
    both decided (an approval and a rejection mailed, the last write winning)."""
    ask_access(desk)
    [request] = sent(desk, BOSS, "approval_request")
    approve, reject = (desk.spool(mail(BOSS, f"Re: {request['Subject']}", text,
                                       in_reply_to=request["Message-ID"]))
                       for text in ("#approve\n", "#reject troppo tardi\n"))
    outcomes = at_once(desk, monkeypatch, approve, reject)
    assert outcomes[approve].outcome == "threaded, approval granted"
    assert outcomes[reject].outcome == "threaded"
    shown = desk.view()
    assert (shown["status"], shown["approval"]) == ("open", "granted")
    assert "nothing waits for approval" in events(shown, "approval_refused")[0]["detail"]
    assert len(sent(desk, MARIO, "approval_granted")) == 1
    assert not sent(desk, MARIO, "approval_rejected")


def test_staff_category_access_asks_the_managers(desk):
    assert desk.deliver(mail(MARIO, "Printer", "The printer jams.\n")).outcome == "created"
    result = desk.deliver(mail(ALICE, "Re: [#10000] Printer",
                               "#category access\n\nServe l'ok del vostro responsabile.\n"))
    assert result.outcome == "staff mail: 1 command(s)"
    shown = desk.view()
    assert (shown["status"], shown["category"], shown["approval"]) == (
        "waiting", "access", "pending")
    [request] = sent(desk, BOSS, "approval_request")
    assert "The printer jams." in body(request)  # the customer's request, not staff's text
    # approval_pending says why it waits: no generic status_waiting besides it.
    assert templates_to(desk, MARIO) == ["auto_reply", "approval_pending", "reply"]


def test_category_access_needs_a_company_with_managers(desk):
    assert desk.deliver(mail("ilona@beta.hu", "Jogosultság", "x\n")).outcome == "created"
    result = desk.deliver(mail(ALICE, "Re: [#10000] Jogosultság", "#category access\n"))
    assert "Beta Kft has no managers to approve it" in result.outcome
    assert desk.view()["status"] == "new"


def test_a_rule_may_ask_for_approval_for_any_category(desk):
    assert desk.deliver(mail(MARIO, "Licenza Office per Anna")).outcome == "created"
    shown = desk.view()
    assert (shown["approval"], shown["category"]) == ("pending", None)
    text = body(sent(desk, BOSS, "approval_request")[0])
    assert "richiesta soggetta ad approvazione" in text


def test_a_busy_manager_gets_every_request(desk):
    # More than outbound.auto_reply_limit (5) in one hour: each one must be answered.
    for n in range(7):
        desk.deliver(mail(f"user{n}@acme.it", f"Accesso {n}", f"{REQUEST}\n"))
    assert len(sent(desk, BOSS, "approval_request")) == 7


@pytest.mark.e2e
def test_approval_end_to_end_over_smtp(tmp_path):
    home = make_home(tmp_path, extra=NO_AUTH)
    (home.root / "rules" / "triage.toml").write_text(RULES)
    with serving(home):
        served = Served(home)
        served.send(mail(MARIO, "Accesso Contabilità", f"{REQUEST}\n"))
        [request] = served.mails(BOSS, "Richiesta da approvare")
        assert REQUEST in body(request)
        reply = {"in_reply_to": request["Message-ID"]}
        served.send(mail("anna@acme.it", f"Re: {request['Subject']}", "#approve\n", **reply))
        served.send(mail(ALICE, f"Re: {request['Subject']}", "#approve\n"))
        shown = served.show()
        assert (shown["status"], shown["approval"]) == ("waiting", "pending")
        assert [e["actor"] for e in events(shown, "approval_refused")] == ["anna@acme.it"]
        [error] = served.mails(ALICE, "Commands not applied")
        assert "staff cannot approve on the customer's behalf" in body(error)
        assert not served.mails(MARIO, "Richiesta approvata")
        served.send(mail(BOSS, f"Re: {request['Subject']}", "#approve\n", **reply))
        shown = served.show()
        assert (shown["status"], shown["approval"]) == ("open", "granted")
        [granted] = served.mails(MARIO, "Richiesta approvata")
        assert BOSS in body(granted)
        assert served.mails(STAFF, "Request approved")
