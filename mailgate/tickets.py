"""Tickets: numbering, opening, articles, participants and events.

Everything here runs inside the caller's transaction, so a ticket, its first article
and the spool row's new state commit together or not at all.  The phase state
machine of SPEC §4 grows here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, case, func, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from mailgate import blobio, msgids, quotes
from mailgate.db import execute, insert_for, upserts
from mailgate.message import AttachmentInfo, ParsedMail
from mailgate.models import (
    Article,
    Attachment,
    Blob,
    Counter,
    Event,
    Participant,
    Ticket,
    TicketLink,
    TimeEntry,
    built,
)

TICKET_COUNTER = "ticket"

# The pipeline's statements, built once (db.execute).
_BUMP = (
    update(Counter)
    .where(Counter.name == TICKET_COUNTER)
    .values(value=case((Counter.value + 1 < bindparam("first"), bindparam("first")),
                       else_=Counter.value + 1))
    .returning(Counter.value)
)
_TICKETS = Ticket.__table__
_TICKET = _TICKETS.insert().returning(_TICKETS.c.id)
_TICKET_COLUMNS = [column.name for column in _TICKETS.columns if column.name != "id"]
_ARTICLES = Article.__table__
_ARTICLE = _ARTICLES.insert().returning(_ARTICLES.c.id)
_ATTACHMENT = Attachment.__table__.insert()
_TOUCH = (update(_TICKETS).where(_TICKETS.c.id == bindparam("ticket_id"))
          .values(updated_at=bindparam("updated_at")))
_INTERNAL = (update(_ARTICLES).where(_ARTICLES.c.id == bindparam("article_id"))
             .values(internal=bindparam("internal")))
_EVENT = Event.__table__.insert()
_PARTICIPANT = Participant.__table__.insert()
_PARTICIPANTS = (select(Participant.address).where(Participant.ticket_id == bindparam("ticket_id"))
                 .order_by(Participant.id))
_IS_PARTICIPANT = select(Participant.id).where(
    Participant.ticket_id == bindparam("ticket_id"),
    Participant.address == bindparam("address")).limit(1)
_BLOB = upserts(lambda insert: insert(Blob.__table__).on_conflict_do_nothing(
    index_elements=["sha256"]))
_HAS_BLOB = select(Blob.sha256).where(Blob.sha256 == bindparam("sha256"))


def next_number(session: Session, first_number: int) -> int:
    """The next ticket number, never below ``first_number``.

    An UPDATE … RETURNING on one counter row: the row lock serialises concurrent
    instances on PostgreSQL, the write lock does on SQLite, and a failed
    transaction gives its number back.  The row is made on first use with
    ``ON CONFLICT DO NOTHING``, so instances that open their first tickets at the
    same moment wait for one another there instead of failing on the primary key.
    """
    number = execute(session, _BUMP, first=first_number).scalar()
    if number is None:
        session.execute(insert_for(session.get_bind())(Counter.__table__)
                        .values(name=TICKET_COUNTER, value=first_number - 1)
                        .on_conflict_do_nothing(index_elements=["name"]))
        number = execute(session, _BUMP, first=first_number).scalar_one()
    return number


def open_ticket(session: Session, number: int, mail: ParsedMail, *, subject: str,
                company_id: int | None, priority: str, origin: str, now: datetime,
                response_due: datetime | None = None,
                response_warn_at: datetime | None = None) -> Ticket:
    """A new ticket for ``mail``, due as its SLA says; the requester is its sender."""
    ticket = built(
        Ticket, number=number, token=msgids.new_token(), subject=subject[:998],
        status="new", priority=priority, origin=origin, company_id=company_id,
        requester=mail.from_addr, created_at=now, updated_at=now,
        response_due=response_due, response_warn_at=response_warn_at,
    )
    # A Core insert, then the object is attached as if loaded: the ORM's unit of work
    # cost twice the statement (bench/RESULTS.md), and the pipeline goes on with it.
    ticket.id = execute(session, _TICKET, **{name: getattr(ticket, name)
                                             for name in _TICKET_COLUMNS}).scalar_one()
    make_transient_to_detached(ticket)
    session.add(ticket)
    # A ticket opened this moment has no participant to look for first.
    execute(session, _PARTICIPANT, ticket_id=ticket.id, address=mail.from_addr,
            role="requester")
    record(session, ticket, "created", now, actor=mail.from_addr,
           detail=f"opened from mail {mail.message_id or '(no Message-ID)'}")
    return ticket


def add_article(session: Session, ticket: Ticket, mail: ParsedMail, *, spool_id: int | None,
                now: datetime, max_attachment_size: int | None = None,
                direction: str = "in") -> int:
    """Store ``mail`` as an article of ``ticket`` with its attachments; its id.

    Core inserts, not ORM objects: nothing reads the article back in the transaction,
    and the ORM's unit of work costs several times the INSERT itself (bench/RESULTS.md).
    """
    article_id = execute(
        session, _ARTICLE, ticket_id=ticket.id, direction=direction,
        message_id=mail.message_id, from_addr=mail.from_addr, to=mail.to, cc=mail.cc,
        subject=mail.subject, text=quotes.new_part(mail.text), full_text=mail.text,
        html=mail.html, spool_id=spool_id, created_at=now,
    ).scalar_one()
    for item in mail.attachments:
        _attach(session, ticket, article_id, item, max_attachment_size, now)
    touch(session, ticket, now)
    return article_id


def touch(session: Session, ticket: Ticket, now: datetime) -> None:
    """Set the ticket's ``updated_at`` to ``now`` by a statement of its own.  Set on
    the ORM object, that one attribute made the next statement flush the ticket
    through the unit of work (a dependency sort with its cycle search each time):
    1.6 % of the pipeline's instructions a mail (bench/RESULTS.md, twelfth round)."""
    if ticket.updated_at != now:
        execute(session, _TOUCH, ticket_id=ticket.id, updated_at=now)
        set_committed_value(ticket, "updated_at", now)


def change(ticket: Ticket, **values) -> None:
    """Set those of ``values`` that differ from what ``ticket`` has: an attribute set
    to the value it already had still makes the next flush go through the ticket."""
    for name, value in values.items():
        if getattr(ticket, name) != value:
            setattr(ticket, name, value)


def set_internal(session: Session, article_id: int, internal: bool) -> None:
    """Mark the article internal (staff only) or not."""
    execute(session, _INTERNAL, article_id=article_id, internal=internal)


def _attach(session: Session, ticket: Ticket, article_id: int, item: AttachmentInfo,
            limit: int | None, now: datetime) -> None:
    """Keep an attachment, its bytes once per content (a logo that comes with every
    mail of a sender is stored once), or only its description when over ``limit``."""
    note = None
    if limit is not None and item.size > limit:
        note = f"not kept: {item.size} bytes, over max_attachment_size {limit}"
        record(session, ticket, "attachment_dropped", now,
               detail=f"{item.filename or '(no name)'}: {note}")
    else:
        _store_blob(session, item)
    execute(session, _ATTACHMENT, article_id=article_id, filename=item.filename,
            content_type=item.content_type, size=item.size, sha256=item.sha256,
            stored=note is None, note=note)


def _store_blob(session: Session, item: AttachmentInfo) -> None:
    """Insert the bytes unless present; the conflict clause absorbs another worker's
    insert of the same content at the same moment."""
    conn = session.connection()
    if not blobio.piecewise(conn, item.size):
        execute(session, _BLOB[conn.dialect.name], sha256=item.sha256, size=item.size,
                data=item.data)
    elif execute(session, _HAS_BLOB, sha256=item.sha256).first() is None:
        # SQLite only, where this transaction is the one writer: no one else can be
        # inserting the same file now.
        _insert_in_pieces(conn, item)


def _insert_in_pieces(conn, item: AttachmentInfo) -> None:
    """A large file's row, its bytes written in pieces after it (blobio.py), so that
    they are not copied twice more on their way to disk."""
    row = conn.execute(insert_for(conn)(Blob.__table__).values(
        sha256=item.sha256, size=item.size, data=blobio.placeholder(item.size)))
    blobio.write(conn, "blob", "data", row.lastrowid, item.data)


def add_participant(session: Session, ticket: Ticket, address: str, role: str = "cc") -> bool:
    """Make ``address`` a participant; False when it already was one."""
    if is_participant(session, ticket.id, address):
        return False
    execute(session, _PARTICIPANT, ticket_id=ticket.id, address=address, role=role)
    return True


def remove_participant(session: Session, ticket: Ticket, address: str) -> None:
    """``address`` no longer takes part in the ticket."""
    for row in session.exec(select(Participant).where(
            Participant.ticket_id == ticket.id, Participant.address == address)):
        session.delete(row)


def participants(session: Session, ticket: Ticket) -> list[str]:
    """Every address that takes part in the ticket, the requester first."""
    return list(execute(session, _PARTICIPANTS, ticket_id=ticket.id).scalars())


def log_time(session: Session, ticket: Ticket, hours: float, now: datetime, *, actor: str,
             spool_id: int | None = None) -> None:
    """Record ``hours`` of work on the ticket (and so on its company's package)."""
    session.add(TimeEntry(ticket_id=ticket.id, company_id=ticket.company_id, actor=actor,
                          hours=hours, at=now, spool_id=spool_id))
    ticket.time_spent_hours += hours
    ticket.updated_at = now
    session.add(ticket)
    record(session, ticket, "time", now, actor=actor, detail=f"{hours:.2f} h",
           spool_id=spool_id)


def hours_used(session: Session, company_id: int) -> float:
    """Hours logged on all tickets of the company."""
    total = session.exec(select(func.sum(TimeEntry.hours))
                         .where(TimeEntry.company_id == company_id)).one()
    return float(total or 0.0)


def link(session: Session, ticket: Ticket, other: Ticket, now: datetime, *, actor: str,
         spool_id: int | None = None) -> None:
    """Relate two tickets (once, whichever way round it is asked)."""
    low, high = sorted((ticket.id, other.id))
    exists = session.exec(select(TicketLink).where(
        TicketLink.ticket_id == low, TicketLink.other_id == high)).first()
    if exists is None:
        session.add(TicketLink(ticket_id=low, other_id=high))
    for one, two in ((ticket, other), (other, ticket)):
        record(session, one, "link", now, actor=actor, detail=f"related to {two.number}",
               spool_id=spool_id)


def linked_numbers(session: Session, ticket: Ticket) -> list[int]:
    """Numbers of the tickets related to ``ticket``."""
    rows = session.exec(select(TicketLink).where(
        (TicketLink.ticket_id == ticket.id) | (TicketLink.other_id == ticket.id)))
    ids = [r.other_id if r.ticket_id == ticket.id else r.ticket_id for r in rows]
    if not ids:
        return []
    return sorted(session.exec(select(Ticket.number).where(Ticket.id.in_(ids))))


def first_text(session: Session, ticket: Ticket) -> str:
    """What the ticket's first article says: the request, as it reached us."""
    query = select(Article.text).where(Article.ticket_id == ticket.id).order_by(Article.id)
    return session.exec(query).first() or ""


def is_participant(session: Session, ticket_id: int, address: str) -> bool:
    """True when ``address`` takes part in the ticket."""
    found = execute(session, _IS_PARTICIPANT, ticket_id=ticket_id, address=address)
    return found.first() is not None


def entered(session: Session, ticket: Ticket, status: str) -> datetime | None:
    """When the ticket last entered ``status`` (from its status events)."""
    query = (select(Event.at).where(Event.ticket_id == ticket.id, Event.kind == "status",
                                    Event.detail.like(f"% → {status}%"))
             .order_by(Event.id.desc()))
    return session.exec(query).first()


def record(session: Session, ticket: Ticket, kind: str, now: datetime, *, actor: str = "",
           detail: str = "", spool_id: int | None = None) -> None:
    """Append an event to the ticket's log."""
    execute(session, _EVENT, ticket_id=ticket.id, kind=kind, at=now, actor=actor,
            detail=detail, spool_id=spool_id)
