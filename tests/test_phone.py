"""Tickets that staff log for a customer's phone call (``#for``): the ticket is the
customer's, with origin ``phone``, the customer gets the normal ``auto_reply``, the
staff text is the first article; and only an authenticated staff mail may do it.
"""

from __future__ import annotations

import email.policy

import pytest

from tests.desk import Desk
from tests.flowkit import ALICE, BOSS, MARIO, NO_AUTH, STAFF, Served, body, events, sent
from tests.helpers import mail, make_home, serving

MX = "mx.example.com"
AUTHRES = f'auth = "authres"\nauthserv_id = "{MX}"\n'
PASS = f"{MX}; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com"
CALL = "Mario ha chiamato: la stampante del 2° piano non stampa."


@pytest.fixture
def desk(tmp_path) -> Desk:
    return Desk(tmp_path, extra_config=NO_AUTH)


def logged(commands: str, text: str = CALL) -> email.message.EmailMessage:
    return mail(ALICE, "Telefonata: stampante", f"{commands}\n\n{text}\n")


def authenticated(msg) -> bytes:
    """``msg`` as the border MTA hands it on after DKIM and SPF passed."""
    return f"Authentication-Results: {PASS}\r\n".encode() + msg.as_bytes(
        policy=email.policy.SMTP)


def test_for_opens_the_customers_ticket_with_origin_phone(desk):
    result = desk.deliver(logged("#for mario@acme.it\n#priority P1"))
    assert (result.outcome, result.ticket) == ("created", 10000)
    shown = desk.view()
    assert (shown["requester"], shown["origin"], shown["priority"]) == (MARIO, "phone", "P1")
    assert shown["company"] == "Acme Srl" and shown["in_writing"] is False
    assert shown["participants"] == [MARIO]
    [article] = shown["articles"]
    assert (article["from"], article["text"]) == (ALICE, CALL)
    [note] = events(shown, "logged_for_customer")
    assert (note["actor"], note["detail"]) == (ALICE, f"logged by {ALICE} for {MARIO} "
                                                      "(origin phone)")
    [answer] = sent(desk, MARIO, "auto_reply")
    assert answer["Subject"] == "[#10000] Ticket aperto: Telefonata: stampante"
    assert "10000" in body(answer) and "phone" in body(answer)
    assert CALL in body(sent(desk, STAFF, "staff_new_ticket")[0])
    assert not sent(desk, ALICE, "command_error")


def test_origin_and_assignee_may_be_given(desk):
    desk.deliver(logged("#for Mario@Acme.it\n#origin web\n#assign me"))
    shown = desk.view()
    assert (shown["requester"], shown["origin"], shown["assignee"]) == (MARIO, "web", ALICE)
    assert shown["in_writing"] is True


def test_a_permission_change_by_phone_still_needs_written_approval(desk):
    desk.deliver(logged("#for mario@acme.it\n#category access",
                        "Abilitare Anna alla cartella Contabilità."))
    shown = desk.view()
    assert (shown["status"], shown["approval"], shown["in_writing"]) == (
        "waiting", "pending", False)
    assert events(shown, "approval")[0]["detail"] == (
        "requested (not in writing: origin phone)")
    text = body(sent(desk, BOSS, "approval_request")[0])
    assert "non ci è pervenuta per iscritto" in text and "Abilitare Anna" in text


@pytest.mark.parametrize(("commands", "error"), [
    ("#for joe@nowhere.example", "joe@nowhere.example belongs to no contracted company"),
    ("#for alice@example.com", "alice@example.com is a staff member, not a customer"),
    ("#for mario", "needs the customer's mail address"),
    ("#for mario@acme.it\n#priority P9", "#priority P9: needs one of P1plus"),
    ("#for mario@acme.it\n#status open", "#status open: unknown here"),
    ("#for mario@acme.it\n#for anna@acme.it", "#for is given more than once"),
])
def test_a_faulty_for_opens_nothing_and_tells_the_sender(desk, commands, error):
    result = desk.deliver(logged(commands))
    assert result.outcome.startswith("phone ticket refused: ") and result.ticket is None
    assert desk.tickets() == []
    [refusal] = sent(desk, ALICE, "command_error")
    assert error in body(refusal) and "#for mario@acme.it" in body(refusal)
    assert not sent(desk, MARIO, "auto_reply")


def test_for_needs_the_request_text(desk):
    result = desk.deliver(mail(ALICE, "Telefonata", "#for mario@acme.it\n"))
    assert "the request is missing" in result.outcome
    assert desk.tickets() == []


def test_a_customers_for_is_just_text_of_their_own_ticket(desk):
    desk.deliver(mail("anna@acme.it", "Per Mario", "#for mario@acme.it\n\nAiuto.\n"))
    shown = desk.view()
    assert (shown["requester"], shown["origin"]) == ("anna@acme.it", "mail")
    assert not sent(desk, MARIO, "auto_reply")


def test_a_forged_staff_for_is_refused_and_opens_nothing(tmp_path):
    desk = Desk(tmp_path, extra_config=AUTHRES)
    result = desk.deliver(logged("#for mario@acme.it"))
    assert result.outcome == f"phone ticket refused: no Authentication-Results from {MX}"
    assert desk.tickets() == []
    assert not sent(desk, MARIO, "auto_reply")
    [refusal] = sent(desk, ALICE, "command_error")
    assert "could not be authenticated" in body(refusal)
    result = desk.deliver(authenticated(logged("#for mario@acme.it")))
    assert result.outcome == "created"
    assert desk.view()["requester"] == MARIO


@pytest.mark.e2e
def test_phone_ticket_end_to_end_over_smtp(tmp_path):
    home = make_home(tmp_path, extra=AUTHRES)
    with serving(home):
        served = Served(home)
        served.send(logged("#for mario@acme.it"), sender=ALICE)  # no Authentication-Results
        assert home.json("tickets", "list") == []
        assert served.mails(MARIO) == []
        [refusal] = served.mails(ALICE, "Commands not applied")
        assert "could not be authenticated" in body(refusal)
        served.send(authenticated(logged("#for mario@acme.it\n#origin phone\n#priority P2")),
                    sender=ALICE)
        [ticket] = home.json("tickets", "list")
        assert (ticket["requester"], ticket["origin"], ticket["priority"]) == (
            MARIO, "phone", "P2")
        shown = served.show(ticket["number"])
        assert shown["articles"][0]["from"] == ALICE
        [answer] = served.mails(MARIO, f"[#{ticket['number']}] Ticket aperto")
        assert "phone" in body(answer)
