"""SLA deadlines on the shipped plans and calendars, and statistics on a known data set."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.desk import Desk
from tests.helpers import PROJECT, mail

COMPANIES = """
[[company]]
name = "Acme Srl"
domains = ["acme.it"]
language = "it"
plan = "standard"
calendar = "it-office"
managers = ["boss@acme.it"]
prepaid_hours = 10.0

[[company]]
name = "Beta Kft"
domains = ["beta.hu"]
language = "hu"
plan = "standard"
calendar = "hu-office"
extra_time = true
"""

MONDAY_10_ROME = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Rome (CET)


@pytest.fixture
def desk(tmp_path):
    """A desk with the shipped sla.toml, Acme on the Italian calendar, Beta on the
    Hungarian one with extra time, and staff authentication off."""
    shipped = (PROJECT / "rules" / "sla.toml").read_text()
    desk = Desk(tmp_path, extra_config='auth = "none"\n',
                rules={"sla.toml": shipped, "companies.toml": COMPANIES})
    desk.clock.now = MONDAY_10_ROME
    return desk


def show(desk, number):
    return desk.home.json("tickets", "show", str(number))


def test_new_ticket_gets_the_take_charge_deadline_of_its_plan_and_calendar(desk):
    number = desk.deliver(mail("mario@acme.it", "Stampante")).ticket
    # P3 = next_business_day: the close of Tuesday, 18:00 in Rome = 17:00 UTC.
    assert show(desk, number)["response_due"] == "2026-11-24T17:00:00+00:00"
    [reply] = desk.outbox("mario@acme.it")
    assert "2026-11-24 18:00" in reply.get_body(("plain",)).get_content()


def test_priority_change_recomputes_the_deadline_from_arrival(desk):
    number = desk.deliver(mail("mario@acme.it", "Server fermo")).ticket
    desk.clock.advance(minutes=30)
    desk.deliver(mail("alice@example.com", f"Re: [#{number}] x", "#priority P1\n"))
    # P1 = 2 business hours from 10:00 Rome: 12:00 Rome = 11:00 UTC.
    assert show(desk, number)["response_due"] == "2026-11-23T11:00:00+00:00"


def test_24x7_counts_wall_time_only_with_extra_time(desk):
    beta = desk.deliver(mail("anna@beta.hu", "Leállt a szerver")).ticket
    acme = desk.deliver(mail("mario@acme.it", "Server fermo")).ticket
    desk.clock.now = datetime(2026, 11, 28, 21, 0, tzinfo=UTC)  # Saturday night
    for number in (beta, acme):
        desk.deliver(mail("alice@example.com", f"Re: [#{number}] x", "#priority P1+\n"))
    # Beta has extra time: 1h from its arrival on Monday 09:00 UTC, around the clock.
    assert show(desk, beta)["response_due"] == "2026-11-23T10:00:00+00:00"
    # Acme has not: one business hour from Monday 10:00 Rome, 11:00 Rome = 10:00 UTC.
    assert show(desk, acme)["response_due"] == "2026-11-23T10:00:00+00:00"
    desk.clock.now = MONDAY_10_ROME.replace(hour=16)  # 17:00 Rome
    late = desk.deliver(mail("mario@acme.it", "Rete giù")).ticket
    desk.deliver(mail("alice@example.com", f"Re: [#{late}] x", "#priority P1+\n"))
    # 17:00 Rome + 1 business hour: 18:00 Rome (17:00 UTC), still on Monday.
    assert show(desk, late)["response_due"] == "2026-11-23T17:00:00+00:00"


def test_check_config_rejects_a_bad_response_time(desk):
    path = desk.home.root / "rules" / "sla.toml"
    path.write_text(path.read_text().replace('response = "4h"', 'response = "4 fortnights"'))
    proc = desk.home.cli("check-config", check=False)
    assert proc.returncode == 78
    assert "sla.toml:plan.standard.priority.P2.response" in proc.stderr


def test_stats_on_a_known_data_set(desk):
    def staff(number, text):
        desk.deliver(mail("alice@example.com", f"Re: [#{number}] x", text))

    first = desk.deliver(mail("mario@acme.it", "Uno")).ticket  # Monday 10:00 Rome
    second = desk.deliver(mail("luigi@acme.it", "Due")).ticket
    third = desk.deliver(mail("anna@beta.hu", "Három")).ticket
    desk.clock.advance(hours=1)
    staff(first, "#status open\n#time 1h\n")       # taken in 1 business hour
    desk.clock.advance(hours=2)                    # 13:00 Rome: lunch until 14:00
    staff(second, "#status open\n")                # taken in 3 business hours
    desk.clock.advance(hours=2)                    # 15:00 Rome
    staff(first, "#status resolved\nFatto.\n")     # resolved after 4 business hours
    data = desk.home.json("stats", "--company", "Acme Srl")
    assert data["tickets"] == 2 and data["by_status"] == {"open": 1, "resolved": 1}
    assert data["by_priority"] == {"P3": 2}
    assert data["take_charge_hours"] == {"count": 2, "median": 2.0, "p90": 3.0}
    assert data["resolution_hours"] == {"count": 1, "median": 4.0, "p90": 4.0}
    assert data["sla_breaches"] == 0
    assert data["companies"] == [{"name": "Acme Srl", "time_logged_hours": 1.0,
                                  "prepaid_hours": 10.0, "balance_hours": 9.0}]
    assert desk.home.json("stats")["tickets"] == 3
    assert third

    desk.deliver(mail("boss@acme.it", "#stats", "please\n"))
    [report] = desk.outbox("boss@acme.it")
    body = report.get_body(("plain",)).get_content()
    assert report["Subject"] == "Statistiche di Acme Srl"
    assert "Ticket: 2" in body and "mediana 2.0" in body and "9.00" in body


def test_waiting_pauses_the_take_charge_clock_only_when_the_plan_says_so(desk):
    path = desk.home.root / "rules" / "sla.toml"
    path.write_text(path.read_text().replace('[plan.standard]\n',
                                             '[plan.standard]\npause_on = ["waiting"]\n', 1))
    from mailgate import bootstrap, config

    desk.svc = bootstrap.build(config.load(desk.home.config), engine=desk.svc.engine,
                               clock=desk.clock)
    number = desk.deliver(mail("mario@acme.it", "Attendo")).ticket  # due Tue 18:00 Rome
    desk.deliver(mail("alice@example.com", f"Re: [#{number}] x", "#status waiting\n#note\n"))
    desk.clock.advance(hours=5)  # 15:00 Rome, after the lunch break
    desk.deliver(mail("mario@acme.it", f"Re: [#{number}] ecco i dati", "Dati.\n"))
    assert show(desk, number)["status"] == "waiting"
    assert show(desk, number)["response_due"] == "2026-11-24T17:00:00+00:00"
    desk.deliver(mail("alice@example.com", f"Re: [#{number}] x", "#status resolved\n#note\n"))
    # Waiting from 10:00 to 15:00 Rome = 4 business hours; the deadline moves from
    # Tuesday 18:00 to Wednesday 13:00 Rome (12:00 UTC).
    assert show(desk, number)["response_due"] == "2026-11-25T12:00:00+00:00"
