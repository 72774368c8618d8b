"""Complaints: handled out of the normal queue.

A ticket becomes a complaint when a triage rule gives it ``category = "complaint"``
(the shipped ``rules/triage.toml`` has one for "reclamo", "reklamáció", "жалоба",
"complaint", …) or staff write ``#category complaint``.  It goes to the queue
``complaints`` (unless the rule names another), its priority is the one that
triage.toml gives complaints (never lowered), a copy goes to
``[tickets] complaints_address`` (``complaint_copy``), and ``mailgate stats`` counts
complaints on their own.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailgate import tickets
from mailgate.models import Company, Ticket
from mailgate.notify import Notice
from mailgate.rules import Rule
from mailgate.run import Run

CATEGORY = "complaint"
QUEUE = "complaints"


def priority(rules: Iterable[Rule]) -> str | None:
    """The priority triage.toml gives complaints: that of the first rule that sets
    both ``category = "complaint"`` and a priority."""
    for rule in rules:
        values = rule.set_.values()
        if values.get("category") == CATEGORY and "priority" in values:
            return values["priority"]
    return None


def mark(session, ticket: Ticket, now, *, actor: str, spool_id: int | None,
         queue: str | None = None) -> None:
    """Take the ticket out of the normal queue (the copy is ``send_copy``'s)."""
    ticket.queue = queue or QUEUE
    session.add(ticket)
    tickets.record(session, ticket, "complaint", now, actor=actor,
                   detail=f"handled as a complaint, queue {ticket.queue}", spool_id=spool_id)


def send_copy(run: Run, ticket: Ticket, company: Company | None) -> None:
    """``complaint_copy`` to ``[tickets] complaints_address`` (an event when unset)."""
    to = run.svc.config.tickets.complaints_address
    if not to:
        tickets.record(run.session, ticket, "complaint", run.now, spool_id=run.row.id,
                       detail="no copy sent: [tickets] complaints_address is not set")
        return
    ctx = run.notifier.context(ticket, company, run.mail,
                               request_text=tickets.first_text(run.session, ticket))
    run.notifier.to_staff(Notice("complaint_copy", to, run.svc.config.staff.language, ctx),
                          ticket)
