"""Deadline jobs with a fake clock: each fires once per ticket and deadline, also after
a restart, and ``serve`` runs them on its own."""

from __future__ import annotations

import smtplib
import time
from datetime import timedelta

from sqlmodel import select

from mailgate import bootstrap, config, jobs
from mailgate.db import session_scope
from mailgate.models import Ticket
from tests.desk import Desk
from tests.helpers import mail, make_home, serving


def set_ticket(desk: Desk, number: int, **values) -> None:
    with session_scope(desk.svc.engine) as session:
        ticket = session.exec(select(Ticket).where(Ticket.number == number)).one()
        for key, value in values.items():
            setattr(ticket, key, value)
        session.add(ticket)


def templates(desk: Desk, to: str) -> list[str]:
    rows = desk.home.json("outbox", "list")
    return [r["template"] for r in rows if r["to"] == to]


def test_sla_warning_then_breach_each_once_and_not_again_after_a_restart(tmp_path):
    desk = Desk(tmp_path, extra_config='\n[sla]\nescalation_address = "boss@example.com"\n')
    number = desk.deliver(mail("mario@acme.it", "Server down")).ticket
    start = desk.clock()
    set_ticket(desk, number, response_warn_at=start + timedelta(hours=3),
               response_due=start + timedelta(hours=4))

    desk.clock.advance(hours=2)
    assert jobs.run_due(desk.svc, desk.clock())["sla_warning"] == 0
    desk.clock.advance(hours=1, minutes=5)
    assert jobs.run_due(desk.svc, desk.clock())["sla_warning"] == 1
    assert jobs.run_due(desk.svc, desk.clock())["sla_warning"] == 0
    assert templates(desk, "staff@example.com").count("sla_warning") == 1
    [warning] = [m for m in desk.outbox("staff@example.com") if "SLA" in m["Subject"]]
    assert f"[#{number}]" in warning["Subject"]
    assert "55" in warning.get_body(("plain",)).get_content()

    desk.clock.advance(hours=1)
    assert jobs.run_due(desk.svc, desk.clock())["sla_breach"] == 1
    # A restarted daemon (new services on the same database) does not send it again.
    restarted = bootstrap.build(config.load(desk.home.config), clock=desk.clock)
    assert jobs.run_due(restarted, desk.clock() + timedelta(hours=1))["sla_breach"] == 0
    assert templates(desk, "boss@example.com") == ["sla_breach"]
    events = [e["kind"] for e in desk.home.json("tickets", "show", str(number))["events"]]
    assert events.count("sla_warning") == 1 and events.count("sla_breach") == 1


def test_a_ticket_taken_in_charge_raises_no_sla_mail(tmp_path):
    desk = Desk(tmp_path)
    number = desk.deliver(mail("mario@acme.it", "Slow VPN")).ticket
    now = desk.clock()
    set_ticket(desk, number, response_warn_at=now, response_due=now + timedelta(minutes=1),
               first_response_at=now)
    desk.clock.advance(hours=1)
    assert jobs.run_due(desk.svc, desk.clock()) == {
        "sla_warning": 0, "sla_breach": 0, "eta_delayed": 0, "auto_close": 0}


def test_eta_passed_tells_the_customer_and_reminds_the_assignee_once(tmp_path):
    desk = Desk(tmp_path)
    number = desk.deliver(mail("mario@acme.it", "New laptop", cc="anna@acme.it")).ticket
    set_ticket(desk, number, eta=desk.clock() + timedelta(days=1), assignee="alice@example.com",
               status="open")
    desk.clock.advance(days=1, minutes=1)
    assert jobs.run_due(desk.svc, desk.clock())["eta_delayed"] == 1
    assert jobs.run_due(desk.svc, desk.clock())["eta_delayed"] == 0
    assert templates(desk, "mario@acme.it").count("eta_delayed") == 1
    assert templates(desk, "anna@acme.it").count("eta_delayed") == 1
    assert templates(desk, "alice@example.com") == ["eta_reminder"]
    # A new ETA is a new deadline: it may fire again when it passes too.
    set_ticket(desk, number, eta=desk.clock() + timedelta(hours=2))
    desk.clock.advance(hours=3)
    assert jobs.run_due(desk.svc, desk.clock())["eta_delayed"] == 1


def test_resolved_ticket_closes_itself_after_auto_close_days(tmp_path):
    desk = Desk(tmp_path)
    number = desk.deliver(mail("mario@acme.it", "Printer jam")).ticket
    set_ticket(desk, number, status="resolved", resolved_at=desk.clock())
    desk.clock.advance(days=4, hours=23)
    assert jobs.run_due(desk.svc, desk.clock())["auto_close"] == 0
    desk.clock.advance(hours=2)
    assert jobs.run_due(desk.svc, desk.clock())["auto_close"] == 1
    shown = desk.home.json("tickets", "show", str(number))
    assert shown["status"] == "closed"
    assert any(e["kind"] == "status" and "resolved → closed" in e["detail"]
               for e in shown["events"])
    [closed] = [m for m in desk.outbox("mario@acme.it") if m["In-Reply-To"] is None]
    assert f"[#{number}]" in closed["Subject"] and closed["Auto-Submitted"] == "auto-generated"
    assert jobs.run_due(desk.svc, desk.clock() + timedelta(days=9))["auto_close"] == 0


def test_a_ticket_reopened_after_the_job_listed_it_stays_open(tmp_path, monkeypatch):
    """The auto-close job lists the tickets due, then closes each in a transaction of
    its own; a customer's reply that reopens one in between wins: the job acts on what
    the ticket is when it acts, not on what its list said."""
    desk = Desk(tmp_path)
    number = desk.deliver(mail("mario@acme.it", "Printer jam")).ticket
    set_ticket(desk, number, status="resolved", resolved_at=desk.clock())
    desk.clock.advance(days=6)
    listed = jobs._due_now

    def then_a_reply(svc, job, now):
        due = listed(svc, job, now)
        if job.name == "auto_close" and due:
            reply = desk.deliver(mail("mario@acme.it", f"Re: [#{number}] Printer jam",
                                      "It jammed again this morning.\n"))
            assert reply.ticket == number
        return due

    monkeypatch.setattr(jobs, "_due_now", then_a_reply)
    assert jobs.run_due(desk.svc, desk.clock())["auto_close"] == 0
    shown = desk.home.json("tickets", "show", str(number))
    assert shown["status"] == "open"
    assert "auto_closed" not in templates(desk, "mario@acme.it")


def test_serve_runs_the_jobs_by_itself(tmp_path):
    home = make_home(tmp_path, extra='\n[jobs]\ninterval = "1s"\n')
    with serving(home):
        with smtplib.SMTP("127.0.0.1", home.port, timeout=10) as client:
            client.send_message(mail("mario@acme.it", "Overdue"))
        home.wait_settled(1)
        home.query("UPDATE ticket SET response_due = '2020-01-01 00:00:00.000000'")
        deadline = time.monotonic() + 15
        while not home.query("SELECT id FROM outbox WHERE template = 'sla_breach'"):
            assert time.monotonic() < deadline, "no sla_breach from serve"
            time.sleep(0.2)
        home.wait_settled(1)
    assert [m["Subject"] for m in home.mails_to("staff@example.com")
            if "SLA" in m["Subject"]] == ["[#10000] SLA breached: Overdue"]
