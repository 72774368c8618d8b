"""SQLModel tables: the spool, tickets and what hangs off them, the outbox.

The database is the queue (ARCHITECTURE principle 1): raw inbound mail waits in
``spool``, outbound mail in ``outbox``; both are processed exactly once because their
state changes commit in the same transaction as the work they record.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import class_mapper
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def loaded(model: type[SQLModel], values: dict) -> SQLModel:
    """A ``model`` object holding a row's ``values`` (every column, as the database
    returned them), made as the ORM makes the objects it loads: no validation and no
    attribute events, which cost ``model(**values)`` about 40 µs a row in the pipeline
    (bench/RESULTS.md).  It is in no session; setting an attribute works as usual."""
    obj = class_mapper(model).class_manager.new_instance()  # configured first
    obj.__dict__.update(values)
    return obj


def built(model: type[SQLModel], **values) -> SQLModel:
    """A new ``model`` object with ``values`` and the defaults of its other fields, made
    as ``loaded`` makes one (``model(**values)`` validates and sends an event for every
    field)."""
    for name, field in model.model_fields.items():
        if name not in values:
            values[name] = field.get_default(call_default_factory=True)
    return loaded(model, values)


def _when(**kw) -> Field:
    if "default" not in kw:
        kw["default_factory"] = utcnow
    return Field(sa_type=UTCDateTime, **kw)


def _json(**kw) -> Field:
    return Field(sa_column=Column(JSON, nullable=False), **kw)


# Ticket origins whose request did not come in writing.
SPOKEN_ORIGINS = ("phone",)


class Company(SQLModel, table=True):
    """A contracted company; rows are synchronised from ``rules/companies.toml``."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    domains: list[str] = _json(default_factory=list)
    language: str = "en"
    plan: str = "standard"
    managers: list[str] = _json(default_factory=list)
    managers_copy: bool = False
    prepaid_hours: float | None = None
    hours_low_threshold: float | None = None
    active: bool = True


class Contact(SQLModel, table=True):
    """A person who wrote to us; ``company_id`` is null for unknown senders."""

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(unique=True)
    name: str = ""
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    created_at: datetime = _when()
    # Set by a bounce for this address; no more automatic mail to it until it writes.
    bouncing_since: datetime | None = _when(default=None)
    bounce_reason: str | None = None


class Staff(SQLModel, table=True):
    """A technician; rows are synchronised from ``rules/staff.toml``."""

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(unique=True)
    name: str = ""
    skills: list[str] = _json(default_factory=list)
    active: bool = True


class Ticket(SQLModel, table=True):
    """A ticket; ``token`` is the secret that our outbound Message-IDs carry."""

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    token: str
    subject: str = ""
    status: str = "new"
    priority: str = "P3"
    category: str | None = None
    origin: str = "mail"
    queue: str | None = None
    # Monitoring alerts (a triage rule with dedupe = "subject"): repeats of the same
    # alert while the ticket is open land on it.
    dedupe_key: str | None = Field(default=None, index=True)
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    requester: str = ""
    assignee: str | None = None
    created_at: datetime = _when()
    updated_at: datetime = _when()
    response_due: datetime | None = _when(default=None)
    response_warn_at: datetime | None = _when(default=None)
    eta: datetime | None = _when(default=None)
    first_response_at: datetime | None = _when(default=None)
    resolved_at: datetime | None = _when(default=None)
    closed_at: datetime | None = _when(default=None)
    merged_into: int | None = None
    time_spent_hours: float = 0.0
    # A request that needs a manager's written approval (access, order): None when
    # none is needed, else pending, granted or rejected (mailgate/approvals.py).
    approval: str | None = None
    # Why a waiting ticket waits when mailgate knows it (phases.WAITING_REASONS).
    waiting_reason: str | None = None
    # The project ticket the work continues on (``#project N``).
    project: int | None = None

    @property
    def in_writing(self) -> bool:
        """False for a request that reached us by voice (logged for a phone call)."""
        return self.origin not in SPOKEN_ORIGINS


class TimeEntry(SQLModel, table=True):
    """Work logged with ``#time``, rounded up to a quarter hour."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    actor: str = ""
    hours: float = 0.0
    at: datetime = _when()
    spool_id: int | None = Field(default=None, foreign_key="spool.id")


class TicketLink(SQLModel, table=True):
    """Two related tickets (``#link``), stored once with the lower id first."""

    __table_args__ = (UniqueConstraint("ticket_id", "other_id"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    other_id: int = Field(foreign_key="ticket.id", index=True)


class Participant(SQLModel, table=True):
    """An address that takes part in a ticket (requester, To, Cc)."""

    __table_args__ = (UniqueConstraint("ticket_id", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    address: str
    role: str = "cc"


class Article(SQLModel, table=True):
    """One mail on a ticket, in or out; ``text`` is what the mail says."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    direction: str = "in"
    message_id: str | None = Field(default=None, index=True)
    from_addr: str = ""
    to: list[str] = _json(default_factory=list)
    cc: list[str] = _json(default_factory=list)
    subject: str = ""
    text: str = Field(default="", sa_type=Text)  # what the mail says: quotes stripped
    full_text: str = Field(default="", sa_type=Text)  # as it came, quoted history included
    html: str | None = Field(default=None, sa_type=Text)
    internal: bool = False
    spool_id: int | None = Field(default=None, foreign_key="spool.id")
    created_at: datetime = _when()


class Attachment(SQLModel, table=True):
    """A file of an article; its bytes are a Blob (shared by every copy of the file),
    or not stored when over ``max_attachment_size`` (``note`` says so)."""

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    filename: str = ""
    content_type: str = "application/octet-stream"
    size: int = 0
    sha256: str = Field(default="", index=True)
    stored: bool = False
    note: str | None = None


class Blob(SQLModel, table=True):
    """Attachment bytes, content-addressed: the same file is stored once."""

    sha256: str = Field(primary_key=True)
    size: int = 0
    data: bytes = Field(sa_type=LargeBinary)


class Event(SQLModel, table=True):
    """Something that happened on a ticket: who, when, what, from which message."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    kind: str
    at: datetime = _when()
    actor: str = ""
    detail: str = Field(default="", sa_type=Text)
    spool_id: int | None = Field(default=None, foreign_key="spool.id")


class Spool(SQLModel, table=True):
    """A received message, committed before it is acknowledged.

    ``dedupe_key`` is the Message-ID, or the sha256 of the raw bytes when there is
    none; its uniqueness is what makes a second delivery a no-op.
    """

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True)
    message_id: str | None = None
    door: str = "smtp"
    # The envelope sender: "" is the null reverse-path of a notification (RFC 5321
    # §4.5.5); None means the door had no envelope (an import).
    mail_from: str | None = None
    rcpt_tos: list[str] = _json(default_factory=list)
    size: int = 0
    received_at: datetime = _when()
    state: str = Field(default="pending", index=True)
    outcome: str | None = None
    ticket_number: int | None = None
    notes: str | None = Field(default=None, sa_type=Text)  # why processing decided so
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = 0
    processed_at: datetime | None = _when(default=None)


class SpoolRaw(SQLModel, table=True):
    """The bytes of a spooled message as received: written once, at intake, and never
    updated, so that the state changes of its ``spool`` row do not rewrite them
    (migration 0003)."""

    __tablename__ = "spool_raw"

    spool_id: int = Field(primary_key=True, foreign_key="spool.id")
    raw: bytes = Field(sa_type=LargeBinary)


class Outbox(SQLModel, table=True):
    """A rendered outbound mail waiting to be sent, sent, or given up on."""

    # The order guard of the outbox worker (send._due_statement) looks for an older
    # queued mail about the same ticket to the same address: without this index SQLite
    # took ix_outbox_to and read every older mail to the staff address (migration 0004).
    __table_args__ = (Index("ix_outbox_ticket_to_state", "ticket_number", "to", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_number: int | None = Field(default=None, index=True)
    template: str = ""
    mail_from: str = ""
    to: str = Field(index=True)
    subject: str = ""
    message_id: str = Field(index=True)
    message: bytes = Field(sa_type=LargeBinary)
    automatic: bool = True
    state: str = Field(default="queued", index=True)
    attempts: int = 0
    created_at: datetime = _when()
    next_attempt_at: datetime = _when()
    sent_at: datetime | None = _when(default=None)
    last_error: str | None = Field(default=None, sa_type=Text)


class ImapState(SQLModel, table=True):
    """Where an IMAP account's folder was read up to (RFC 3501 §2.3.1.1).

    A UID is only meaningful with its folder's UIDVALIDITY; when that changes, the
    folder is read again from the start and the spool's dedupe key keeps already
    received mail from being taken twice.
    """

    __table_args__ = (UniqueConstraint("account", "folder"),)
    id: int | None = Field(default=None, primary_key=True)
    account: str
    folder: str
    uidvalidity: int = 0
    last_uid: int = 0
    updated_at: datetime = _when()


class JobMark(SQLModel, table=True):
    """A scheduled job that fired for a ticket and a deadline.

    Written in the transaction that queues the job's mail, and unique: the job fires
    once per ticket and deadline, across restarts and across instances.
    """

    __table_args__ = (UniqueConstraint("job", "ticket_id", "deadline"),)
    id: int | None = Field(default=None, primary_key=True)
    job: str
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    deadline: str
    at: datetime = _when()


class Counter(SQLModel, table=True):
    """Named counters; ``ticket`` numbers tickets without gaps between instances."""

    name: str = Field(primary_key=True)
    value: int = 0
