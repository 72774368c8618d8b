"""Handing a ticket on: to sales for a quote (``#quote``), or to a project ticket where
the work continues (``#project N``).

``#quote`` puts the ticket in the queue ``sales`` and sends ``quote_request`` with the
ticket's history to the mailbox's ``sales_address``; the customer is told with
``quote_notice`` that a salesperson will contact them.  ``#project N`` links the
ticket to project ticket N (same company), makes its people participants of N, and
tells them with ``project_notice`` that the work continues there.  Neither changes
the ticket's phase: staff add ``#status`` when this ticket ends here.
"""

from __future__ import annotations

from sqlmodel import select

from mailgate import tickets
from mailgate.models import Article, Company, Ticket
from mailgate.notify import Notice
from mailgate.run import Run

SALES_QUEUE = "sales"


def to_sales(session, ticket: Ticket, now, *, actor: str, spool_id: int | None,
             sales: str) -> None:
    """The ticket is sales' now (its state; ``tell_sales`` sends the mails)."""
    ticket.queue = SALES_QUEUE
    session.add(ticket)
    tickets.record(session, ticket, "quote", now, actor=actor,
                   detail=f"handed to {sales} for a quote", spool_id=spool_id)


def tell_sales(run: Run, ticket: Ticket, company: Company | None, *, sales: str) -> None:
    """``quote_request`` with the history to sales, ``quote_notice`` to the customer."""
    zone = run.svc.policy.timezone(company.name if company else None)
    ctx = run.notifier.context(ticket, company, run.mail, sales_address=sales,
                               history=history(run.session, ticket, zone))
    notice = Notice("quote_request", sales, run.svc.config.staff.language, ctx)
    run.notifier.to_staff(notice, ticket)
    run.notifier.to_people("quote_notice", ticket, company, ctx)


def history(session, ticket: Ticket, zone) -> list[dict]:
    """Every article of the ticket, oldest first, in the company's time zone."""
    rows = session.exec(select(Article).where(Article.ticket_id == ticket.id)
                        .order_by(Article.id))
    return [{"at": a.created_at.astimezone(zone), "from": a.from_addr, "subject": a.subject,
             "direction": a.direction, "internal": a.internal, "text": a.text} for a in rows]


def to_project(session, ticket: Ticket, now, *, actor: str, spool_id: int | None,
               project: Ticket) -> None:
    """Link ``ticket`` to ``project``; its people take part in the project from now on."""
    tickets.link(session, ticket, project, now, actor=actor, spool_id=spool_id)
    ticket.project = project.number
    session.add(ticket)
    for address in tickets.participants(session, ticket):
        tickets.add_participant(session, project, address)
    tickets.record(session, ticket, "project", now, actor=actor,
                   detail=f"the work continues on {project.number}", spool_id=spool_id)
    tickets.record(session, project, "project", now, actor=actor,
                   detail=f"ticket {ticket.number} continues here", spool_id=spool_id)


def tell_project(run: Run, ticket: Ticket, company: Company | None, *,
                 project: Ticket) -> None:
    """``project_notice`` to the ticket's people: where the work goes on."""
    ctx = run.notifier.context(ticket, company, run.mail,
                               project={"number": project.number, "subject": project.subject,
                                        "tag": run.svc.tag.format(project.number)})
    run.notifier.to_people("project_notice", ticket, company, ctx)
