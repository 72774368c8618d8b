"""What the triage rules decide for a new ticket, and monitoring alerts (SPEC §7).

A rule with ``dedupe = "subject"`` makes a repeat of an alert (same normalised
subject, same company) while its ticket is open an article of that ticket instead of
a new ticket; a recovery mail matching the rule's ``resolve_on`` resolves it.
"""

from __future__ import annotations

from sqlmodel import select

from mailgate import phases, tickets
from mailgate.models import Ticket
from mailgate.rules import Triage, dedupe_key, is_recovery
from mailgate.run import Result, Run
from mailgate.senders import Sender
from mailgate.spool import PROCESSED

OPEN = ("new", "open", "waiting")


def apply_triage(run: Run, ticket: Ticket, decided: Triage) -> None:
    """Set what the rules decided on a new ticket and record the rules that hit."""
    tickets.change(ticket, category=decided.category or ticket.category,
                   assignee=decided.assignee or ticket.assignee,
                   queue=decided.queue or ticket.queue)
    if decided.dedupe:
        ticket.dedupe_key = dedupe_key(run.mail.subject, decided.resolve_on)
    if decided.hits:
        tickets.record(run.session, ticket, "triage", run.now, actor="rules",
                       detail=f"rules {', '.join(decided.hits)}: priority {ticket.priority}, "
                              f"origin {ticket.origin}, auto_reply {decided.auto_reply}",
                       spool_id=run.row.id)


def open_alert(run: Run, sender: Sender, decided: Triage) -> Ticket | None:
    """The open ticket this alert repeats, if the rules say to fold repeats."""
    if not decided.dedupe:
        return None
    key = dedupe_key(run.mail.subject, decided.resolve_on)
    query = select(Ticket).where(Ticket.dedupe_key == key, Ticket.status.in_(OPEN),
                                 Ticket.company_id == sender.company_id)
    return run.session.exec(query.order_by(Ticket.number.desc())).first()


def add_repeat(run: Run, sender: Sender, ticket: Ticket, decided: Triage,
               notes: list[str]) -> Result:
    """Add a repeated alert to its ticket; a recovery resolves the ticket."""
    run.add_article(ticket)
    tickets.record(run.session, ticket, "alert_repeat", run.now, actor=sender.address,
                   detail=f"mail {run.mail.message_id}: {run.mail.subject}",
                   spool_id=run.row.id)
    outcome = "alert repeat"
    if is_recovery(run.mail.subject, decided.resolve_on):
        phases.move(run.session, ticket, "resolved", run.now, actor=sender.address,
                    spool_id=run.row.id, why="recovery alert")
        outcome = "alert recovery: resolved"
    return Result(PROCESSED, outcome, ticket.number, notes)
