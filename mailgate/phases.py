"""Ticket phases: one table of allowed transitions (SPEC §4).

``new → open → waiting → resolved → closed``, plus ``merged``.  A transition records
its event and says which phase mail it calls for; the caller sends it, because who
is told depends on who made the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session

from mailgate import bizhours, tickets
from mailgate.models import Article, Ticket
from mailgate.policy import Policy

STATUSES = ("new", "open", "waiting", "resolved", "closed", "merged")

# Every phase may be left for any later one, a resolved or closed ticket may be
# reopened, and a merged ticket is final.
ALLOWED: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "waiting", "resolved", "closed", "merged"}),
    "open": frozenset({"waiting", "resolved", "closed", "merged"}),
    "waiting": frozenset({"open", "resolved", "closed", "merged"}),
    "resolved": frozenset({"open", "waiting", "closed", "merged"}),
    "closed": frozenset({"open"}),
    "merged": frozenset(),
}

# The phases whose entry is announced to the customer with ``status_<phase>``.
ANNOUNCED = frozenset({"open", "waiting", "resolved", "closed"})

# Why a ticket waits, where mailgate itself put it there: ``approval`` is a request
# waiting for a company manager's ``#approve`` (mailgate/approvals.py).  A ticket
# that staff put on hold with ``#status waiting`` has no reason recorded.
WAITING_REASONS = ("approval",)


class TransitionError(ValueError):
    """A change of phase that the table does not allow."""


@dataclass(frozen=True)
class Transition:
    """What a change of phase did: from, to, and the phase mail it calls for."""

    before: str
    after: str

    @property
    def template(self) -> str | None:
        """``status_<phase>`` when the new phase is announced, else None."""
        return f"status_{self.after}" if self.after in ANNOUNCED else None


def check(current: str, to: str) -> None:
    """Raise TransitionError unless a ticket in phase ``current`` may go to ``to``."""
    if to not in STATUSES:
        raise TransitionError(f"unknown status {to!r}; one of {', '.join(STATUSES[1:5])}")
    if to not in ALLOWED[current]:
        raise TransitionError(f"the ticket is {current}: it cannot become {to}")


def move(session: Session, ticket: Ticket, to: str, now: datetime, *, actor: str,
         spool_id: int | None = None, why: str = "",
         reason: str | None = None) -> Transition:
    """Change the phase of ``ticket`` and record it; raises TransitionError.

    ``reason`` is the waiting reason when ``to`` is waiting; any change of phase
    clears the one before."""
    check(ticket.status, to)
    before = ticket.status
    ticket.status, ticket.updated_at = to, now
    ticket.waiting_reason = reason if to == "waiting" else None
    if to == "resolved":
        ticket.resolved_at = now
    elif to == "closed":
        ticket.closed_at = now
    session.add(ticket)
    detail = f"{before} → {to}" + (f" ({why})" if why else "")
    tickets.record(session, ticket, "status", now, actor=actor, detail=detail, spool_id=spool_id)
    return Transition(before, to)


def merge(session: Session, source: Ticket, target: Ticket, now: datetime, *, actor: str,
          spool_id: int | None = None) -> None:
    """Merge ``source`` into ``target``: its articles and participants move over, and
    later mail about ``source`` lands on ``target`` (see correlate.thread)."""
    session.execute(update(Article).where(Article.ticket_id == source.id)
                    .values(ticket_id=target.id))
    for address in tickets.participants(session, source):
        tickets.add_participant(session, target, address)
    move(session, source, "merged", now, actor=actor, spool_id=spool_id,
         why=f"into {target.number}")
    source.merged_into = target.number
    session.add(source)
    tickets.record(session, target, "merged", now, actor=actor,
           detail=f"ticket {source.number} merged into this one", spool_id=spool_id)


def resume_clock(session: Session, policy: Policy, ticket: Ticket, company: str | None,
                 now: datetime) -> None:
    """With ``pause_on = ["waiting"]`` the take-charge clock stood still while the
    ticket waited: move the deadline on by the business time spent waiting."""
    if ticket.response_due is None or ticket.first_response_at is not None:
        return
    if not bizhours.pauses_on_waiting(policy, company):
        return
    since = tickets.entered(session, ticket, "waiting")
    if since is not None:
        ticket.response_due = bizhours.paused_due(policy, company, ticket.response_due,
                                                  since, now)
        session.add(ticket)
