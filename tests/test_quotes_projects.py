"""Handing a ticket on: ``#quote`` to the mailbox's sales address with the ticket's
history, ``#project N`` to a project ticket where the work continues.  The customer
is told either way.
"""

from __future__ import annotations

import pytest

from tests.desk import Desk
from tests.flowkit import ALICE, MARIO, NO_AUTH, Served, body, events, sent, templates_to
from tests.helpers import mail, make_home, serving

SALES = "sales@example.com"
ASKED = "Ci servirebbero 10 notebook per i nuovi assunti."


@pytest.fixture
def desk(tmp_path) -> Desk:
    return Desk(tmp_path, extra_config=NO_AUTH)


def staff(desk: Desk, body_text: str, number: int = 10000, subject: str = "Notebook", **kw):
    return desk.deliver(mail(ALICE, f"Re: [#{number}] {subject}", body_text), **kw)


def test_quote_hands_the_ticket_to_sales_with_its_history(desk):
    desk.deliver(mail(MARIO, "Notebook", f"{ASKED}\n"))
    staff(desk, "#note\n\nCliente interessato anche alle docking station.\n")
    result = staff(desk, "#quote\n\nLa contatterà il nostro ufficio commerciale.\n")
    assert result.outcome == "staff mail: 1 command(s)"
    shown = desk.view()
    assert shown["queue"] == "sales" and shown["status"] == "new"
    [quote] = events(shown, "quote")
    assert (quote["actor"], quote["detail"]) == (ALICE, f"handed to {SALES} for a quote")
    [request] = sent(desk, SALES, "quote_request")
    assert request["Subject"] == "[#10000] Quote request: Notebook"
    text = body(request)
    assert ASKED in text and "docking station" in text and "(internal note)" in text
    assert text.index(ASKED) < text.index("docking station")  # oldest first
    [notice] = sent(desk, MARIO, "quote_notice")
    assert notice["Subject"] == "[#10000] La contatterà un nostro commerciale: Notebook"
    assert templates_to(desk, MARIO) == ["auto_reply", "quote_notice", "reply"]


@pytest.mark.parametrize(("command", "rcpt", "error"), [
    ("#quote", "create@example.com", "no sales address: set sales_address in this [[mailbox]]"),
    ("#quote now", "hd@example.com", "takes no argument"),
])
def test_a_quote_that_cannot_go_is_refused(desk, command, rcpt, error):
    desk.deliver(mail(MARIO, "Notebook", f"{ASKED}\n"))
    result = staff(desk, f"{command}\n", rcpt=rcpt)
    assert error in result.outcome
    assert desk.view()["queue"] is None and not sent(desk, SALES, "quote_request")


def test_project_links_the_ticket_and_tells_the_customer(desk):
    desk.deliver(mail(MARIO, "Stampante", "Il toner finisce ogni settimana.\n"))
    desk.deliver(mail("anna@acme.it", "Rinnovo stampanti", "Progetto 2027.\n"))
    result = staff(desk, "#project 10001\n#status closed\n", subject="Stampante")
    assert result.outcome == "staff mail: 2 command(s)"
    shown = desk.view(10000)
    assert (shown["project"], shown["links"], shown["status"]) == (10001, [10001], "closed")
    assert events(shown, "project")[0]["detail"] == "the work continues on 10001"
    project = desk.view(10001)
    assert MARIO in project["participants"]
    assert events(project, "project")[0]["detail"] == "ticket 10000 continues here"
    [notice] = sent(desk, MARIO, "project_notice")
    assert notice["Subject"] == "[#10000] Il lavoro prosegue nel ticket 10001: Stampante"
    assert "[#10001]" in body(notice) and "Rinnovo stampanti" in body(notice)


@pytest.mark.parametrize(("target", "error"), [
    ("10001", "ticket 10001 belongs to another company"),
    ("10000", "names this very ticket"),
    ("10009", "there is no ticket 10009"),
])
def test_a_project_of_another_company_or_none_is_refused(desk, target, error):
    desk.deliver(mail(MARIO, "Stampante"))
    desk.deliver(mail("ilona@beta.hu", "Projekt"))
    result = staff(desk, f"#project {target}\n", subject="Stampante")
    assert error in result.outcome
    assert desk.view()["project"] is None and not sent(desk, MARIO, "project_notice")


@pytest.mark.e2e
def test_quote_and_project_end_to_end_over_smtp(tmp_path):
    home = make_home(tmp_path, extra=NO_AUTH)
    with serving(home):
        served = Served(home)
        served.send(mail(MARIO, "Notebook", f"{ASKED}\n"))
        served.send(mail("anna@acme.it", "Rinnovo parco macchine", "Progetto.\n"))
        served.send(mail(ALICE, "Re: [#10000] Notebook", "#quote\n#project 10001\n#note\n"))
        [request] = served.mails(SALES, "[#10000] Quote request")
        assert ASKED in body(request)
        assert served.mails(MARIO, "[#10000] La contatterà un nostro commerciale")
        [notice] = served.mails(MARIO, "[#10000] Il lavoro prosegue nel ticket 10001")
        assert "Rinnovo parco macchine" in body(notice)
        shown = served.show()
        assert (shown["queue"], shown["project"], shown["links"]) == ("sales", 10001, [10001])
