"""Tickets: numbering, opening, articles, participants and events.

Everything here runs inside the caller's transaction, so a ticket, its first article
and the spool row's new state commit together or not at all.  The phase state
machine of SPEC §4 grows here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, update
from sqlmodel import Session, select

from mailgate import msgids
from mailgate.message import ParsedMail
from mailgate.models import Article, Attachment, Counter, Event, Participant, Ticket

TICKET_COUNTER = "ticket"


def next_number(session: Session, first_number: int) -> int:
    """The next ticket number, never below ``first_number``.

    An UPDATE … RETURNING on one counter row: the row lock serialises concurrent
    instances on PostgreSQL, the write lock does on SQLite, and a failed
    transaction gives its number back.
    """
    value = Counter.value
    bump = (
        update(Counter)
        .where(Counter.name == TICKET_COUNTER)
        .values(value=case((value + 1 < first_number, first_number), else_=value + 1))
        .returning(Counter.value)
    )
    number = session.execute(bump).scalar()
    if number is None:
        session.add(Counter(name=TICKET_COUNTER, value=first_number))
        session.flush()
        number = first_number
    return number


def open_ticket(session: Session, number: int, mail: ParsedMail, *, subject: str,
                company_id: int | None, priority: str, origin: str, now: datetime) -> Ticket:
    """A new ticket for ``mail``; the requester is its sender."""
    ticket = Ticket(
        number=number, token=msgids.new_token(), subject=subject[:998],
        status="new", priority=priority, origin=origin, company_id=company_id,
        requester=mail.from_addr, created_at=now, updated_at=now,
    )
    session.add(ticket)
    session.flush()
    add_participant(session, ticket, mail.from_addr, "requester")
    record(session, ticket, "created", now, actor=mail.from_addr,
           detail=f"opened from mail {mail.message_id or '(no Message-ID)'}")
    return ticket


def add_article(session: Session, ticket: Ticket, mail: ParsedMail, *, spool_id: int | None,
                now: datetime, direction: str = "in") -> Article:
    """Store ``mail`` as an article of ``ticket`` with its attachments' metadata."""
    article = Article(
        ticket_id=ticket.id, direction=direction, message_id=mail.message_id,
        from_addr=mail.from_addr, to=mail.to, cc=mail.cc, subject=mail.subject,
        text=mail.text, html=mail.html, spool_id=spool_id, created_at=now,
    )
    session.add(article)
    session.flush()
    for item in mail.attachments:
        session.add(Attachment(article_id=article.id, filename=item.filename,
                               content_type=item.content_type, size=item.size,
                               sha256=item.sha256))
    ticket.updated_at = now
    session.add(ticket)
    return article


def add_participant(session: Session, ticket: Ticket, address: str, role: str = "cc") -> bool:
    """Make ``address`` a participant; False when it already was one."""
    if is_participant(session, ticket.id, address):
        return False
    session.add(Participant(ticket_id=ticket.id, address=address, role=role))
    session.flush()
    return True


def is_participant(session: Session, ticket_id: int, address: str) -> bool:
    """True when ``address`` takes part in the ticket."""
    query = select(Participant.id).where(
        Participant.ticket_id == ticket_id, Participant.address == address
    )
    return session.exec(query).first() is not None


def record(session: Session, ticket: Ticket, kind: str, now: datetime, *, actor: str = "",
           detail: str = "", spool_id: int | None = None) -> Event:
    """Append an event to the ticket's log."""
    event = Event(ticket_id=ticket.id, kind=kind, at=now, actor=actor, detail=detail,
                  spool_id=spool_id)
    session.add(event)
    return event
