"""Sample template contexts: for ``mailgate render`` previews and the template tests.

The common variables are those of ``notify.Notifier.context``; ``EXTRA`` holds what
each template adds (see staffmail, customermail and jobs).
"""

from __future__ import annotations

from datetime import UTC, datetime

WITHOUT_TICKET = {"not_contracted", "sales_forward", "ticket_list", "stats_report"}

SUBJECT = "Stampante guasta al 3° piano"
TICKET = {
    "number": 10042, "subject": SUBJECT, "status": "open", "priority": "P1+",
    "origin": "mail", "requester": "mario.rossi@acme.it",
    "response_due": datetime(2025, 3, 4, 13, 0, tzinfo=UTC), "assignee": "alice@example.com",
    "eta": datetime(2025, 3, 5, 14, 0, tzinfo=UTC), "time_spent_hours": 1.25,
}
REQUEST = "Per favore abilitate Anna all'accesso alla cartella Contabilità."
LISTED = {"number": 10042, "subject": SUBJECT, "status": "open", "priority": "P3",
          "requester": "mario.rossi@acme.it", "created_at": datetime(2025, 3, 4, tzinfo=UTC),
          "assignee": None}
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
                       "balance_hours": 17.5}],
        "complaints": {"tickets": 1, "sla_breaches": 0}}},
    "approval_request": {"managers": ["it-manager@acme.it"], "category": "access",
                         "in_writing": False, "request_text": REQUEST},
    "approval_pending": {"managers": ["it-manager@acme.it"], "category": "access",
                         "in_writing": True, "request_text": REQUEST},
    "approval_granted": {"decided_by": "it-manager@acme.it", "reason": "", "category": "access"},
    "approval_rejected": {"decided_by": "it-manager@acme.it", "category": "access",
                          "reason": "Non previsto nel budget di quest'anno."},
    "quote_request": {"sales_address": "sales@example.com", "history": [
        {"at": datetime(2025, 3, 4, 9, 30, tzinfo=UTC), "from": "mario.rossi@acme.it",
         "subject": SUBJECT, "direction": "in", "internal": False, "text": REQUEST},
        {"at": datetime(2025, 3, 4, 10, 0, tzinfo=UTC), "from": "alice@example.com",
         "subject": SUBJECT, "direction": "in", "internal": True, "text": "#quote"}]},
    "quote_notice": {},
    "project_notice": {"project": {"number": 10050, "subject": "Rinnovo stampanti",
                                   "tag": "[#10050]"}},
    "complaint_copy": {"request_text": "Reclamo: è la terza volta che la stampante si guasta."},
}


def context(with_ticket: bool) -> dict:
    """The common variables, with or without a ticket."""
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
    """Everything template ``name`` uses."""
    return {**context(name not in WITHOUT_TICKET), **EXTRA.get(name, {})}
