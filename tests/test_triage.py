"""Triage rules in the pipeline: what they set on a new ticket, monitoring alerts folded
into their open ticket and resolved by a recovery, and check-config on a bad rule."""

from __future__ import annotations

import pytest

from mailgate import bootstrap, config
from tests.desk import Desk
from tests.helpers import mail

RULES = r'''
[[rule]]
name = "monitoring alerts"
when = { from = "nagios@acme.it", subject = "(?i)^(PROBLEM|CRITICAL|RECOVERY)\\b" }
set = { origin = "monitor", priority = "P2", auto_reply = false, category = "infrastructure" }
dedupe = "subject"
resolve_on = "(?i)^RECOVERY\\b"

[[rule]]
name = "support line is urgent"
when = { to = "support@example.com" }
set = { priority = "P1", assignee = "alice@example.com" }

[[rule]]
name = "outside monitor"
when = { from = "alerts@monitoring.example" }
set = { origin = "monitor", auto_reply = false }
'''


@pytest.fixture
def desk(tmp_path):
    desk = Desk(tmp_path)
    (desk.home.root / "rules" / "triage.toml").write_text(RULES)
    desk.svc = bootstrap.build(config.load(desk.home.config), engine=desk.svc.engine,
                               clock=desk.clock)
    return desk


def show(desk, number):
    return desk.home.json("tickets", "show", str(number))


def test_rules_set_the_new_ticket_and_are_recorded(desk):
    result = desk.deliver(mail("mario@acme.it", "Everything is slow", to="support@example.com"),
                          rcpt="support@example.com")
    ticket = show(desk, result.ticket)
    assert (ticket["priority"], ticket["assignee"]) == ("P1", "alice@example.com")
    [event] = [e for e in ticket["events"] if e["kind"] == "triage"]
    assert "support line is urgent" in event["detail"]
    assert desk.outbox("mario@acme.it"), "an ordinary mail still gets its auto reply"
    [row] = desk.home.json("spool", "list")
    assert row["notes"] == "triage rules: support line is urgent"


def test_monitoring_alert_repeats_fold_into_the_open_ticket_and_recovery_resolves_it(desk):
    first = desk.deliver(mail("nagios@acme.it", "PROBLEM: disk full on srv1"))
    ticket = show(desk, first.ticket)
    assert (ticket["origin"], ticket["priority"], ticket["category"]) == (
        "monitor", "P2", "infrastructure")
    assert desk.outbox("nagios@acme.it") == []  # auto_reply = false

    repeat = desk.deliver(mail("nagios@acme.it", "PROBLEM: disk full on srv1"))
    other = desk.deliver(mail("nagios@acme.it", "PROBLEM: load high on srv2"))
    assert (repeat.outcome, repeat.ticket) == ("alert repeat", first.ticket)
    assert other.outcome == "created" and other.ticket != first.ticket

    recovery = desk.deliver(mail("nagios@acme.it", "RECOVERY: disk full on srv1"))
    assert (recovery.outcome, recovery.ticket) == ("alert recovery: resolved", first.ticket)
    ticket = show(desk, first.ticket)
    assert ticket["status"] == "resolved" and len(ticket["articles"]) == 3

    again = desk.deliver(mail("nagios@acme.it", "PROBLEM: disk full on srv1"))
    assert again.outcome == "created" and again.ticket not in (first.ticket, other.ticket)


def test_a_rule_lets_an_unknown_monitoring_sender_open_tickets(desk):
    result = desk.deliver(mail("alerts@monitoring.example", "CPU at 100%"))
    assert result.outcome == "created"
    assert show(desk, result.ticket)["origin"] == "monitor"
    # Without a rule, the same unknown sender goes to sales.
    assert desk.deliver(mail("someone@monitoring.example", "Hi")).outcome == "sales"


def test_check_config_names_the_file_rule_and_reason(tmp_path):
    desk = Desk(tmp_path)
    path = desk.home.root / "rules" / "triage.toml"
    path.write_text('[[rule]]\nname = "broken"\nwhen = { subject = "(PROBLEM" }\n'
                    'set = { origin = "pigeon" }\n')
    proc = desk.home.cli("check-config", check=False)
    assert proc.returncode == 78
    assert f"{path}:rule[0] 'broken'.when.subject: bad regex" in proc.stderr
    assert f"{path}:rule[0] 'broken'.set.origin:" in proc.stderr
