"""A customer's mail on a ticket, and a manager's ``#tickets`` request.

A reply to a resolved ticket confirms it (``#close``, or a confirm phrase in the
company's language) or reopens it; a reply to a closed ticket reopens it.  Customers
have one command, ``#close``; any other ``#`` line of theirs is ordinary text.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from mailgate import approvals, i18n, mailcommands, phases, quotes, stats, tickets
from mailgate.models import Company, Ticket
from mailgate.notify import Notice
from mailgate.run import Result, Run
from mailgate.senders import Sender
from mailgate.spool import PROCESSED

LIST_CLOSED_DAYS = 30  # ``ticket_list`` shows tickets closed in this many days


def handle(run: Run, sender: Sender, ticket: Ticket, company: Company | None,
           why: str) -> Result:
    """Add the customer's mail to ``ticket``, close or reopen it, tell staff."""
    run.add_article(ticket)
    tickets.record(run.session, ticket, "article", run.now, actor=sender.address,
                   detail=f"mail {run.mail.message_id} added ({why})", spool_id=run.row.id)
    answer = _approval_answer(run)
    if answer:
        decided = approvals.decide(run, sender, ticket, company, *answer)
        if decided is not None:
            return decided
    outcome = "threaded"
    closing = _closing(run, sender, ticket, company)
    if closing and _may_close(run, sender, ticket, company):
        if ticket.status != "closed":
            phases.move(run.session, ticket, "closed", run.now, actor=sender.address,
                        spool_id=run.row.id, why="confirmed by the customer")
            ctx = run.notifier.context(ticket, company, run.mail)
            run.notifier.to_people("status_closed", ticket, company, ctx, run.mail)
            outcome = "threaded, closed by the customer"
    elif closing:
        # Someone who may not close it asked to: the ticket stays as it is.
        outcome = "threaded, close not allowed for this sender"
    elif ticket.status in ("resolved", "closed"):
        # The customer's own mail is their notice: no status_open goes back to them.
        phases.move(run.session, ticket, "open", run.now, actor=sender.address,
                    spool_id=run.row.id, why="reopened by the customer's reply")
        outcome = "threaded, reopened"
    ctx = run.notifier.context(ticket, company, run.mail)
    to = ticket.assignee or run.svc.config.staff.notify
    if to:
        notice = Notice("staff_customer_reply", to, run.svc.config.staff.language, ctx, run.mail)
        run.notifier.to_staff(notice, ticket)
    return Result(PROCESSED, outcome, ticket.number)


def _closing(run: Run, sender: Sender, ticket: Ticket, company: Company | None) -> bool:
    """The mail asks to close: a ``#close`` line, or a confirmation of a resolved (or
    already closed) ticket."""
    if ticket.status == "merged":
        return False
    lines, text = mailcommands.split(quotes.new_part(run.mail.text))
    if any(line.lower() == "#close" for _, line in lines):
        return True
    if ticket.status not in ("resolved", "closed"):
        return False
    lang = company.language if company else "en"
    return i18n.confirms(text, i18n.confirm_words(lang, run.svc.config.tickets.confirm_words))


def _approval_answer(run: Run) -> tuple[str, str] | None:
    """``("approve", "")`` or ``("reject", reason)`` for a mail whose command lines
    answer ``approval_request``; the reason is the rest of the line, else the text."""
    lines, text = mailcommands.split(quotes.new_part(run.mail.text))
    for _, line in lines:
        verb, _, args = line.partition(" ")
        if verb.lower().lstrip("#") in approvals.VERBS:
            return verb.lower().lstrip("#"), args.strip() or text.strip()
    return None


def _may_close(run: Run, sender: Sender, ticket: Ticket, company: Company | None) -> bool:
    """The requester, a participant or a manager of the company (SPEC §6)."""
    return (sender.address == ticket.requester
            or tickets.is_participant(run.session, ticket.id, sender.address)
            or (company is not None and sender.address in company.managers))


def manager_request(run: Run, sender: Sender) -> str | None:
    """``"tickets"`` or ``"stats"`` for a manager's mail whose subject or first line is
    ``#tickets`` or ``#stats``; None for any other mail."""
    if sender.company is None or sender.address not in sender.company.managers:
        return None
    first = next((ln.strip() for ln in run.mail.text.splitlines() if ln.strip()), "")
    for asked in (run.mail.subject.strip().lower(), first.lower()):
        if asked in ("#tickets", "#stats"):
            return asked[1:]
    return None


def send_stats(run: Run, sender: Sender) -> Result:
    """Answer a manager with ``stats_report``: the figures of ``mailgate stats``."""
    company = sender.company
    figures = stats.compute(run.session, run.svc.policy, run.now, company=company.name)
    ctx = run.notifier.context(None, company, run.mail, stats=figures)
    notice = Notice("stats_report", sender.address, company.language, ctx, run.mail,
                    automatic=False)
    run.notifier.queue(notice, None, auto_submitted="auto-replied")
    return Result(PROCESSED, "statistics sent", None)


def send_list(run: Run, sender: Sender) -> Result:
    """Answer a manager with ``ticket_list``: open and recently closed tickets."""
    company = sender.company
    rows = list(run.session.exec(select(Ticket).where(Ticket.company_id == company.id)
                                 .order_by(Ticket.number)))
    since = run.now - timedelta(days=LIST_CLOSED_DAYS)
    plan = run.svc.policy.plan(company.plan)
    zone = run.svc.policy.timezone(company.name)

    def row(t: Ticket) -> dict:
        return {"number": t.number, "subject": t.subject, "status": t.status,
                "priority": plan.label(t.priority), "requester": t.requester,
                "created_at": t.created_at.astimezone(zone), "assignee": t.assignee}

    open_rows = [row(t) for t in rows if t.status not in ("closed", "merged")]
    closed_rows = [row(t) for t in rows if t.status == "closed" and t.closed_at
                   and t.closed_at >= since]
    ctx = run.notifier.context(None, company, run.mail, open_tickets=open_rows,
                               closed_tickets=closed_rows, days=LIST_CLOSED_DAYS)
    notice = Notice("ticket_list", sender.address, company.language, ctx, run.mail,
                    automatic=False)
    run.notifier.queue(notice, None, auto_submitted="auto-replied")
    return Result(PROCESSED, f"ticket list sent ({len(open_rows)} open)", None)
