"""Read-only views in the JSON shapes of SPEC §10 (tickets, spool, outbox).

The CLI prints these as JSON with ``--json`` and as aligned text otherwise; scripts
rely on the field names, so they are spelled here once.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from mailgate import tickets
from mailgate.models import Article, Attachment, Company, Event, Outbox, Participant, Spool, Ticket


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ticket_summary(session: Session, ticket: Ticket, companies: dict[int, str]) -> dict:
    """One ticket as listed by ``tickets list --json``."""
    return {
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.category,
        "origin": ticket.origin,
        "queue": ticket.queue,
        "company": companies.get(ticket.company_id),
        "requester": ticket.requester,
        "assignee": ticket.assignee,
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "response_due": _iso(ticket.response_due),
    }


def company_names(session: Session) -> dict[int, str]:
    """Company names by id."""
    return {c.id: c.name for c in session.exec(select(Company))}


def list_tickets(session: Session, company: str | None = None,
                 status: str | None = None) -> list[dict]:
    """Tickets, newest first, optionally of one company and/or status."""
    names = company_names(session)
    query = select(Ticket).order_by(Ticket.number.desc())
    if status:
        query = query.where(Ticket.status == status)
    if company:
        ids = [i for i, n in names.items() if n.lower() == company.lower()]
        query = query.where(Ticket.company_id.in_(ids))
    return [ticket_summary(session, t, names) for t in session.exec(query)]


def show_ticket(session: Session, number: int) -> dict | None:
    """One ticket with participants, articles and events, or None."""
    ticket = session.exec(select(Ticket).where(Ticket.number == number)).first()
    if ticket is None:
        return None
    view = ticket_summary(session, ticket, company_names(session))
    participants = session.exec(select(Participant).where(Participant.ticket_id == ticket.id))
    articles = session.exec(
        select(Article).where(Article.ticket_id == ticket.id).order_by(Article.id)
    )
    events = session.exec(select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id))
    view.update(
        participants=[p.address for p in participants],
        time_spent_hours=ticket.time_spent_hours,
        eta=_iso(ticket.eta),
        merged_into=ticket.merged_into,
        links=tickets.linked_numbers(session, ticket),
        project=ticket.project,
        approval=ticket.approval,
        waiting_reason=ticket.waiting_reason,
        in_writing=ticket.in_writing,
        articles=[_article(session, a) for a in articles],
        events=[{"kind": e.kind, "at": _iso(e.at), "actor": e.actor, "detail": e.detail}
                for e in events],
    )
    return view


def _article(session: Session, article: Article) -> dict:
    files = session.exec(select(Attachment).where(Attachment.article_id == article.id))
    return {
        "direction": article.direction,
        "message_id": article.message_id,
        "from": article.from_addr,
        "to": article.to,
        "cc": article.cc,
        "subject": article.subject,
        "text": article.text,
        "internal": article.internal,
        "created_at": _iso(article.created_at),
        "attachments": [
            {"filename": f.filename, "content_type": f.content_type, "size": f.size,
             "sha256": f.sha256}
            for f in files
        ],
    }


def list_spool(session: Session, state: str | None = None) -> list[dict]:
    """Spool rows, oldest first, optionally in one state."""
    query = select(Spool).order_by(Spool.id)
    if state:
        query = query.where(Spool.state == state)
    return [
        {
            "id": row.id, "message_id": row.message_id, "door": row.door, "state": row.state,
            "outcome": row.outcome, "ticket": row.ticket_number, "error": row.error,
            "notes": row.notes,
            "mail_from": row.mail_from, "rcpt_tos": row.rcpt_tos,
            "received_at": _iso(row.received_at), "size": row.size,
        }
        for row in session.exec(query)
    ]


def list_outbox(session: Session, state: str | None = None) -> list[dict]:
    """Outbox rows, oldest first, optionally in one state."""
    query = select(Outbox).order_by(Outbox.id)
    if state:
        query = query.where(Outbox.state == state)
    return [
        {
            "id": row.id, "to": row.to, "subject": row.subject, "template": row.template,
            "state": row.state, "attempts": row.attempts, "ticket": row.ticket_number,
            "message_id": row.message_id, "created_at": _iso(row.created_at),
            "sent_at": _iso(row.sent_at), "last_error": row.last_error,
        }
        for row in session.exec(query)
    ]
