"""The project's own templates render in every language with the pipeline's context."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailgate.checks import TEMPLATE_NAMES
from mailgate.outbound.compose import Templates

ROOT = Path(__file__).resolve().parents[2] / "templates"
LANGUAGES = sorted(p.name for p in ROOT.iterdir() if p.is_dir())
WITHOUT_TICKET = {"not_contracted", "sales_forward", "ticket_list", "stats_report"}

SUBJECT = "Stampante guasta al 3° piano"
TICKET = {
    "number": 10042, "subject": SUBJECT, "status": "open", "priority": "P1+",
    "origin": "mail", "requester": "mario.rossi@acme.it",
    "response_due": datetime(2025, 3, 4, 13, 0, tzinfo=UTC), "assignee": "alice@example.com",
    "eta": datetime(2025, 3, 5, 14, 0, tzinfo=UTC), "time_spent_hours": 1.25,
}
LISTED = {"number": 10042, "subject": SUBJECT, "status": "open", "priority": "P3",
          "requester": "mario.rossi@acme.it", "created_at": datetime(2025, 3, 4, tzinfo=UTC),
          "assignee": None}
# The variables each template adds to the common ones (see staffmail and customermail).
EXTRA = {
    "status_waiting": {"note": "Waiting for the spare part."},
    "status_resolved": {"auto_close_days": 5, "confirm_words": ["ok chiudete"]},
    "status_closed": {}, "status_open": {},
    "auto_closed": {"auto_close_days": 5},
    "reply": {"status_label": "in lavorazione", "staff_name": "Alice Rossi"},
    "command_error": {"errors": ["line 1: unknown command '#x'"], "auth_failure": "",
                      "commands_help": [{"usage": "#note", "help": "internal"}]},
    "command_result": {"applied": ["#status open: new → open"]},
    "hours_low": {"balance": 1.5, "threshold": 2.0, "spent": 0.75, "prepaid": 20.0},
    "ticket_list": {"open_tickets": [LISTED], "closed_tickets": [], "days": 30},
    "sla_warning": {"minutes_left": 45}, "sla_breach": {"minutes_late": 5},
    "stats_report": {"stats": {
        "tickets": 3, "by_status": {"open": 2, "closed": 1}, "by_priority": {"P3": 3},
        "take_charge_hours": {"count": 2, "median": 1.5, "p90": 3.0},
        "resolution_hours": {"count": 0, "median": None, "p90": None}, "sla_breaches": 1,
        "companies": [{"name": "Acme Srl", "time_logged_hours": 2.5, "prepaid_hours": 20.0,
                       "balance_hours": 17.5}]}},
}


def context(with_ticket: bool) -> dict:
    return {
        "received_subject": SUBJECT,
        "sender": {"address": "mario.rossi@acme.it", "name": "Mario Rossi"},
        "text": "La stampante non stampa più.\n{{ not a template }}",
        "company": "Acme Srl",
        "mailbox": "hd@example.com",
        "ticket": TICKET if with_ticket else None,
        "tag": "[#10042]" if with_ticket else "",
    }


def full_context(name: str) -> dict:
    return {**context(name not in WITHOUT_TICKET), **EXTRA.get(name, {})}


def test_all_languages_are_present():
    assert set(LANGUAGES) >= {"en", "it", "hu", "ru"}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_template_renders(name, lang):
    templates = Templates(ROOT)
    assert templates.exists(lang, name), f"{lang}/{name} missing"
    rendered = templates.render(name, lang, full_context(name))
    assert rendered.subject and "\n" not in rendered.subject
    if name not in ("ticket_list", "stats_report"):
        assert SUBJECT in rendered.subject
    assert rendered.text.strip()
    if name in {"sales_forward", "staff_new_ticket", "staff_customer_reply"}:
        assert "{{ not a template }}" in rendered.text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_auto_reply_names_ticket_priority_and_subject(lang):
    rendered = Templates(ROOT).render("auto_reply", lang, context(True))
    assert rendered.subject.startswith("[#10042] ")
    for expected in ("10042", "P1+", SUBJECT, "[#10042]", "2025-03-04"):
        assert expected in rendered.text
    assert rendered.html is not None and "10042" in rendered.html


@pytest.mark.parametrize("lang", LANGUAGES)
def test_auto_reply_without_response_due(lang):
    ctx = context(True)
    ctx["ticket"] = {**TICKET, "response_due": None}
    rendered = Templates(ROOT).render("auto_reply", lang, ctx)
    assert "10042" in rendered.text and "2025-03-04" not in rendered.text
