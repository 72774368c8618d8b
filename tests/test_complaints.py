"""Complaints: recognised by the shipped triage rules in our customers' languages (or
set by staff with ``#category complaint``), handled out of the normal queue with the
priority triage.toml gives them, copied to ``[tickets] complaints_address``, and
counted on their own by ``mailgate stats``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.desk import Desk
from tests.flowkit import ALICE, MARIO, NO_AUTH, STAFF, Served, body, events, sent
from tests.helpers import PROJECT, mail, make_home, serving

SHIPPED_RULES = (PROJECT / "rules" / "triage.toml").read_text(encoding="utf-8")
COMPLAINTS = "complaints@example.com"
WITH_ADDRESS = f'{NO_AUTH}\n[tickets]\ncomplaints_address = "{COMPLAINTS}"\n'


def complaints_desk(root: Path, extra: str = WITH_ADDRESS) -> Desk:
    return Desk(root, extra_config=extra, rules={"triage.toml": SHIPPED_RULES})


@pytest.fixture
def desk(tmp_path) -> Desk:
    return complaints_desk(tmp_path)


@pytest.mark.parametrize(("sender", "subject", "text"), [
    (MARIO, "Reclamo", "È la terza volta che la stampante si guasta."),
    (MARIO, "Stampante", "Vorrei presentare un reclamo formale."),
    ("ilona@beta.hu", "Reklamáció", "Harmadszor romlik el a nyomtató."),
    ("olga@gamma.ru", "Принтер", "Это официальная жалоба: принтер снова сломан."),
    ("joe@acme.it", "Formal complaint", "The printer broke for the third time."),
])
def test_a_complaint_is_raised_queued_and_copied(desk, sender, subject, text):
    assert desk.deliver(mail(sender, subject, f"{text}\n")).outcome == "created"
    shown = desk.view()
    assert (shown["category"], shown["priority"], shown["queue"]) == (
        "complaint", "P2", "complaints")
    [flagged] = events(shown, "complaint")
    assert (flagged["actor"], flagged["detail"]) == (
        "rules", "handled as a complaint, queue complaints")
    [copy] = sent(desk, COMPLAINTS, "complaint_copy")
    assert copy["Subject"] == f"[#10000] Complaint: {subject}"
    assert text in body(copy) and sender in body(copy)
    assert sent(desk, sender, "auto_reply") and sent(desk, STAFF, "staff_new_ticket")


def test_an_ordinary_fault_is_no_complaint(desk):
    desk.deliver(mail(MARIO, "Printer out of order", "It jams.\n"))
    shown = desk.view()
    assert (shown["category"], shown["priority"], shown["queue"]) == (None, "P3", None)
    assert not sent(desk, COMPLAINTS, "complaint_copy")


def test_staff_category_complaint_raises_the_priority_and_copies(desk):
    desk.deliver(mail(MARIO, "Printer", "It jams again, third time this month.\n"))
    result = desk.deliver(mail(ALICE, "Re: [#10000] Printer", "#category complaint\n#note\n"))
    assert result.outcome == "staff mail: 2 command(s)"
    shown = desk.view()
    assert (shown["category"], shown["priority"], shown["queue"]) == (
        "complaint", "P2", "complaints")
    assert events(shown, "priority")[0]["detail"] == "P3 → P2"
    [copy] = sent(desk, COMPLAINTS, "complaint_copy")
    assert "third time this month" in body(copy)  # the customer's words, not staff's


def test_a_more_urgent_ticket_keeps_its_priority(desk):
    desk.deliver(mail(MARIO, "Printer"))
    desk.deliver(mail(ALICE, "Re: [#10000] Printer", "#priority P1\n#category complaint\n#note\n"))
    assert (desk.view()["priority"], desk.view()["category"]) == ("P1", "complaint")


def test_without_complaints_address_the_ticket_says_no_copy_went(tmp_path):
    desk = complaints_desk(tmp_path, NO_AUTH)
    desk.deliver(mail(MARIO, "Reclamo", "Inaccettabile.\n"))
    details = [e["detail"] for e in events(desk.view(), "complaint")]
    assert details[-1] == "no copy sent: [tickets] complaints_address is not set"


def test_stats_count_complaints_on_their_own(desk):
    desk.deliver(mail(MARIO, "Reclamo", "Inaccettabile.\n"))
    desk.deliver(mail(MARIO, "Printer", "It jams.\n"))
    figures = desk.home.json("stats")
    assert figures["tickets"] == 2
    assert figures["complaints"]["tickets"] == 1
    assert figures["complaints"]["by_priority"] == {"P2": 1}
    text = desk.home.cli("stats").stdout
    assert "complaints: 1  by status: {'new': 1}" in text


@pytest.mark.e2e
def test_complaint_end_to_end_over_smtp(tmp_path):
    home = make_home(tmp_path, extra=WITH_ADDRESS)
    (home.root / "rules" / "triage.toml").write_text(SHIPPED_RULES, encoding="utf-8")
    with serving(home):
        served = Served(home)
        served.send(mail(MARIO, "Reclamo", "È la terza volta.\n"))
        served.send(mail("luigi@acme.it", "VPN", "Non va.\n"))
        [copy] = served.mails(COMPLAINTS, "Complaint: Reclamo")
        assert "È la terza volta." in body(copy)
        complaint = served.show(10000)
        assert (complaint["category"], complaint["priority"], complaint["queue"]) == (
            "complaint", "P2", "complaints")
        assert served.show(10001)["queue"] is None
        figures = home.json("stats")
        assert (figures["tickets"], figures["complaints"]["tickets"]) == (2, 1)
