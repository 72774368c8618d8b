"""What a new ticket's category calls for beyond a fault: a manager's approval
(``access``, ``order``, or a rule's ``needs_approval``) or complaint handling."""

from __future__ import annotations

from mailgate import approvals, complaints
from mailgate.models import Company, Ticket
from mailgate.rules import Triage
from mailgate.run import Run


def opened(run: Run, ticket: Ticket, company: Company | None, decided: Triage) -> None:
    """Start the approval or complaint flow of a ticket just opened as triaged."""
    if approvals.needed(ticket.approval, ticket.category, decided.needs_approval):
        approvals.mark(run.session, ticket, run.now, actor="rules", spool_id=run.row.id)
        approvals.ask(run, ticket, company)
    if ticket.category == complaints.CATEGORY:
        complaints.mark(run.session, ticket, run.now, actor="rules", spool_id=run.row.id,
                        queue=decided.queue)
        complaints.send_copy(run, ticket, company)
