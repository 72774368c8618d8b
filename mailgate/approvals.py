"""Requests that need a company manager's written approval: permission changes and
device orders.

A ticket whose category is ``access`` or ``order`` (a triage rule, or staff's
``#category``), or that a triage rule marks ``needs_approval = true``, waits in
``waiting`` with reason ``approval``.  The company's managers get
``approval_request`` with the request text, the requester ``approval_pending``.
A manager's reply whose first line is ``#approve`` or ``#reject [reason]`` moves it
on: approved, the ticket is open again; rejected, it is closed.  The requester and
staff are told with ``approval_granted`` / ``approval_rejected``.

The reply reaches the ticket like any customer reply (authorize), and its sender must
be a manager of the ticket's company: anybody else's ``#approve`` changes nothing and
is recorded as ``approval_refused``.  Staff have no ``#approve``: the approval is the
customer's, in writing, so a request logged for a phone call needs it just the same
(``approval_request`` says it was not received in writing).
"""

from __future__ import annotations

from mailgate import phases, tickets
from mailgate.models import Company, Ticket
from mailgate.notify import Notice
from mailgate.outbound import autoreply
from mailgate.run import Result, Run
from mailgate.senders import Sender
from mailgate.spool import PROCESSED

CATEGORIES = ("access", "order")
PENDING, GRANTED, REJECTED = "pending", "granted", "rejected"
REASON = "approval"  # the waiting reason (phases.WAITING_REASONS)
VERBS = ("approve", "reject")
NOT_STAFF = ("only a manager of the company approves, by answering approval_request; "
             "staff cannot approve on the customer's behalf")
# The phases a ticket may wait for approval from.
_MAY_WAIT = ("new", "open", "waiting")


def needed(approval: str | None, category: str | None, flagged: bool = False) -> bool:
    """True when a ticket whose approval state is ``approval`` must now ask for one:
    its category needs it (or a rule flagged it) and none is pending or granted."""
    return (flagged or category in CATEGORIES) and approval not in (PENDING, GRANTED)


def cannot_wait(status: str, company: Company | None) -> str | None:
    """Why a ticket in ``status`` of ``company`` cannot wait for approval, or None."""
    if status not in _MAY_WAIT:
        return f"a {status} ticket cannot wait for approval"
    if company is None or not company.managers:
        name = company.name if company else "a ticket without company"
        return f"{name} has no managers to approve it (managers in rules/companies.toml)"
    return None


def blocks(approval: str | None, to: str) -> str | None:
    """Why staff may not move a ticket to ``to`` while its approval is ``approval``."""
    if approval == PENDING and to in ("open", "resolved"):
        return f"the request waits for a manager's #approve; {NOT_STAFF}"
    return None


def mark(session, ticket: Ticket, now, *, actor: str, spool_id: int | None) -> None:
    """The ticket waits for approval (its state; ``ask`` sends the mails)."""
    ticket.approval = PENDING
    if ticket.status == "waiting":
        ticket.waiting_reason = REASON
    else:
        phases.move(session, ticket, "waiting", now, actor=actor, spool_id=spool_id,
                    why="waits for a manager's approval", reason=REASON)
    session.add(ticket)
    spoken = "" if ticket.in_writing else f" (not in writing: origin {ticket.origin})"
    tickets.record(session, ticket, "approval", now, actor=actor,
                   detail=f"requested{spoken}", spool_id=spool_id)


def ask(run: Run, ticket: Ticket, company: Company | None) -> None:
    """``approval_request`` to every manager, ``approval_pending`` to the requester."""
    if ticket.approval != PENDING or ticket.status != "waiting":
        return  # a later command of the same mail closed or merged it
    managers = company.managers if company else []
    if not managers:
        tickets.record(run.session, ticket, "approval", run.now,
                       detail="nobody to ask: the company has no managers in "
                              "rules/companies.toml", spool_id=run.row.id)
        return
    ctx = run.notifier.context(
        ticket, company, run.mail, managers=managers, category=ticket.category,
        in_writing=ticket.in_writing, request_text=tickets.first_text(run.session, ticket))
    for manager in managers:
        _to_manager(run, ticket, Notice("approval_request", manager, company.language, ctx))
    run.notifier.to_customer(Notice("approval_pending", ticket.requester, company.language,
                                    ctx), ticket, "auto-generated")


def _to_manager(run: Run, ticket: Ticket, notice: Notice) -> None:
    """A request a person must answer: not held back by the automatic-mail limits
    (a busy manager may get many in an hour), only by a bouncing address."""
    why_not = autoreply.bouncing(run.session, notice.to)
    if why_not:
        tickets.record(run.session, ticket, "mail_suppressed", run.now,
                       detail=f"{notice.template} not sent: {why_not}")
        return
    notice.automatic = False
    run.notifier.queue(notice, ticket, "auto-generated")


def decide(run: Run, sender: Sender, ticket: Ticket, company: Company | None, verb: str,
           reason: str) -> Result | None:
    """Apply a manager's ``#approve`` / ``#reject``; None (and an ``approval_refused``
    event) when this sender may not decide or nothing waits for a decision."""
    why_not = _may_not_decide(sender.address, ticket, company)
    if why_not:
        tickets.record(run.session, ticket, "approval_refused", run.now, actor=sender.address,
                       detail=f"#{verb} refused: {why_not}", spool_id=run.row.id)
        return None
    granted = verb == "approve"
    ticket.approval = GRANTED if granted else REJECTED
    why = f"{'approved' if granted else 'rejected'} by {sender.address}"
    phases.move(run.session, ticket, "open" if granted else "closed", run.now,
                actor=sender.address, spool_id=run.row.id, why=why)
    if granted:
        phases.resume_clock(run.session, run.svc.policy, ticket, company.name, run.now)
    tickets.record(run.session, ticket, "approval", run.now, actor=sender.address,
                   detail=f"{ticket.approval} by {sender.address}"
                          + (f": {reason}" if reason and not granted else ""),
                   spool_id=run.row.id)
    _tell(run, ticket, company, f"approval_{ticket.approval}", sender.address,
          "" if granted else reason)
    return Result(PROCESSED, f"threaded, approval {ticket.approval}", ticket.number)


def _may_not_decide(address: str, ticket: Ticket, company: Company | None) -> str | None:
    if company is None or address not in company.managers:
        owner = company.name if company else "the ticket's company"
        return f"{address} is not a manager of {owner}"
    if ticket.approval != PENDING or ticket.status != "waiting":
        return f"nothing waits for approval (approval {ticket.approval or 'not needed'}, " \
               f"status {ticket.status})"
    return None


def _tell(run: Run, ticket: Ticket, company: Company, template: str, decided_by: str,
          reason: str) -> None:
    """The decision to the requester (company language) and to staff."""
    ctx = run.notifier.context(ticket, company, run.mail, decided_by=decided_by, reason=reason,
                               category=ticket.category)
    run.notifier.to_customer(Notice(template, ticket.requester, company.language, ctx),
                             ticket, "auto-generated")
    staff = ticket.assignee or run.svc.config.staff.notify
    if staff:
        run.notifier.to_staff(Notice(template, staff, run.svc.config.staff.language, ctx),
                              ticket)
