"""Scheduled jobs: SLA warnings and breaches, ETA reminders, auto-close (SPEC §5, §4).

``run_due(svc, now)`` does one round and is what tests call with a fake clock; the
daemon runs it every minute with APScheduler.  Each job fires once per ticket and
deadline: the ``JobMark`` row it inserts is unique and commits with the job's mail,
so a restart, a second round or a second instance on the same database never sends
it again (a concurrent instance's insert fails and its transaction rolls back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from mailgate import phases, tickets
from mailgate.bootstrap import Services
from mailgate.config import MailboxConfig
from mailgate.db import session_scope
from mailgate.message import ParsedMail
from mailgate.models import Company, JobMark, Ticket
from mailgate.notify import Notice, Notifier

log = logging.getLogger("mailgate.jobs")

OPEN_PHASES = ("new", "open", "waiting")
UNRESOLVED = ("new", "open", "waiting")


def run_due(svc: Services, now: datetime) -> dict[str, int]:
    """Run every job once; how many tickets each one acted on."""
    return {job.name: _each(svc, now, job) for job in JOBS}


@dataclass(frozen=True)
class Job:
    """A job: the tickets whose deadline has come (``due``: a select of them), which
    deadline that is, and what to do about it."""

    name: str
    due: Callable[[Services, datetime], Select]
    deadline: Callable[[Ticket], datetime]
    act: Callable


def _each(svc: Services, now: datetime, job: Job) -> int:
    """Act on every ticket ``job`` finds due, each in its own transaction."""
    done = 0
    for ticket_id, deadline in _due_now(svc, job, now):
        try:
            with session_scope(svc.engine) as session:
                ticket = _still_due(session, svc, job, now, ticket_id, deadline)
                if ticket is None:
                    continue
                session.add(JobMark(job=job.name, ticket_id=ticket_id, deadline=deadline,
                                    at=now))
                session.flush()  # fails here when this deadline has fired already
                job.act(_Job(svc, session, now), ticket)
            done += 1
        except IntegrityError:
            continue  # another instance (or an earlier round) did it
    if done:
        log.info("job %s acted on %d ticket(s)", job.name, done)
    return done


def _due_now(svc: Services, job: Job, now: datetime) -> list[tuple[int, str]]:
    """The (ticket id, deadline) pairs ``job`` finds due now."""
    with session_scope(svc.engine) as session:
        return [(t.id, job.deadline(t).isoformat()) for t in session.exec(job.due(svc, now))]


def _still_due(session: Session, svc: Services, job: Job, now: datetime, ticket_id: int,
               deadline: str) -> Ticket | None:
    """The ticket, locked for this transaction, if it is still due at the same deadline.

    Between the list and the act a reply may have changed it (reopened a resolved
    ticket, taken it in charge, moved its ETA): the job acts on what the ticket is now,
    and the lock keeps a concurrent worker's reply (PostgreSQL) from changing it under
    the job; the reply then waits for the job and reads what it did.
    """
    query = job.due(svc, now).where(Ticket.id == ticket_id).with_for_update()
    ticket = session.exec(query).first()
    if ticket is None or job.deadline(ticket).isoformat() != deadline:
        return None
    return ticket


class _Job:
    """What a job's action needs: services, the session, the time, a notifier."""

    def __init__(self, svc: Services, session: Session, now: datetime):
        self.svc, self.session, self.now = svc, session, now
        self.notifier = Notifier(svc, session, _mailbox(svc), now)

    def company(self, ticket: Ticket) -> Company | None:
        return self.session.get(Company, ticket.company_id) if ticket.company_id else None

    def context(self, ticket: Ticket, **extra) -> dict:
        mail = ParsedMail(subject=ticket.subject, from_addr=ticket.requester)
        return self.notifier.context(ticket, self.company(ticket), mail, **extra)

    def to_staff(self, template: str, to: str | None, ticket: Ticket, **extra) -> None:
        if to:
            notice = Notice(template, to, self.svc.config.staff.language,
                            self.context(ticket, **extra))
            self.notifier.to_staff(notice, ticket)


def _mailbox(svc: Services) -> MailboxConfig:
    return svc.config.mailbox[0]


# --- SLA --------------------------------------------------------------------------------

def _warn_due(svc: Services, now: datetime) -> Select:
    return select(Ticket).where(
        Ticket.status.in_(OPEN_PHASES), Ticket.first_response_at.is_(None),
        Ticket.response_warn_at.is_not(None), Ticket.response_warn_at <= now,
        Ticket.response_due > now)


def _warn(job: _Job, ticket: Ticket) -> None:
    left = ticket.response_due - job.now
    job.to_staff("sla_warning", ticket.assignee or job.svc.config.staff.notify, ticket,
                 minutes_left=max(int(left.total_seconds() // 60), 0))
    tickets.record(job.session, ticket, "sla_warning", job.now,
                   detail=f"take-charge due {ticket.response_due.isoformat()}")


def _breach_due(svc: Services, now: datetime) -> Select:
    return select(Ticket).where(
        Ticket.status.in_(OPEN_PHASES), Ticket.first_response_at.is_(None),
        Ticket.response_due.is_not(None), Ticket.response_due <= now)


def _breach(job: _Job, ticket: Ticket) -> None:
    to = job.svc.config.sla.escalation_address or job.svc.config.staff.notify
    job.to_staff("sla_breach", to, ticket,
                 minutes_late=int((job.now - ticket.response_due).total_seconds() // 60))
    tickets.record(job.session, ticket, "sla_breach", job.now,
                   detail=f"take-charge was due {ticket.response_due.isoformat()}")


# --- ETA and auto-close -------------------------------------------------------------------

def _eta_due(svc: Services, now: datetime) -> Select:
    return select(Ticket).where(Ticket.status.in_(UNRESOLVED), Ticket.eta.is_not(None),
                                Ticket.eta <= now)


def _eta(job: _Job, ticket: Ticket) -> None:
    company = job.company(ticket)
    job.notifier.to_people("eta_delayed", ticket, company, job.context(ticket),
                           auto_submitted="auto-generated")
    job.to_staff("eta_reminder", ticket.assignee or job.svc.config.staff.notify, ticket)
    tickets.record(job.session, ticket, "eta_passed", job.now,
                   detail=f"expected by {ticket.eta.isoformat()}")


def _close_due(svc: Services, now: datetime) -> Select:
    cutoff = now - timedelta(days=svc.config.tickets.auto_close_days)
    return select(Ticket).where(Ticket.status == "resolved", Ticket.resolved_at <= cutoff)


def _close(job: _Job, ticket: Ticket) -> None:
    days = job.svc.config.tickets.auto_close_days
    phases.move(job.session, ticket, "closed", job.now, actor="mailgate",
                why=f"no answer {days} days after it was resolved")
    company = job.company(ticket)
    job.notifier.to_people("auto_closed", ticket, company,
                           job.context(ticket, auto_close_days=days),
                           auto_submitted="auto-generated")


JOBS = (
    Job("sla_warning", _warn_due, lambda t: t.response_due, _warn),
    Job("sla_breach", _breach_due, lambda t: t.response_due, _breach),
    Job("eta_delayed", _eta_due, lambda t: t.eta, _eta),
    Job("auto_close", _close_due, lambda t: t.resolved_at, _close),
)
