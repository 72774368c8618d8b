"""Durable intake: a message is committed here before any door acknowledges it.

The dedupe key is the Message-ID, or the sha256 of the raw bytes when there is none;
its UNIQUE constraint makes a second delivery (another door, an alias, an MTA retry)
a no-op that is still acknowledged.  Rows wait as ``pending`` until the pipeline
claims them; a row whose processing raised is ``failed`` with its traceback and
``retry`` puts it back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import bindparam, case, func, insert, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, select

from mailgate import blobio, hotsql
from mailgate.db import checkpoint_later, execute, session_scope, upserts
from mailgate.message import MSGID_RE, without_nul
from mailgate.models import Spool, SpoolRaw, loaded

PENDING, PROCESSED, IGNORED, FAILED = "pending", "processed", "ignored", "failed"

# The pipeline's statements, built once (db.execute).
_SIZE = func.length(SpoolRaw.raw)
_PENDING_RAW = (
    select(_SIZE, case((_SIZE < blobio.MIN_SIZE, SpoolRaw.raw)))
    .join(Spool, Spool.id == SpoolRaw.spool_id)
    .where(SpoolRaw.spool_id == bindparam("spool_id"), Spool.state == PENDING)
)
_RAW = select(SpoolRaw.raw).where(SpoolRaw.spool_id == bindparam("spool_id"))


def _claim_statement(locking: bool):
    target = select(Spool.id).where(Spool.id == bindparam("spool_id"), Spool.state == PENDING)
    if locking:
        target = target.with_for_update(skip_locked=True)
    return (update(Spool).where(Spool.id.in_(target), Spool.state == PENDING)
            .values(state=PROCESSED, attempts=Spool.attempts + 1)
            .returning(*Spool.__table__.columns))


_CLAIM = {locking: _claim_statement(locking) for locking in (False, True)}


def _intake_statement(dialect_insert):
    """The spool row of a new message; nothing (no id) when its key is there already."""
    return dialect_insert(Spool.__table__).values(
        dedupe_key=bindparam("key"), message_id=bindparam("message_id"),
        door=bindparam("door"), mail_from=bindparam("mail_from"),
        rcpt_tos=bindparam("rcpt_tos"),
        size=bindparam("size"), received_at=bindparam("received_at"),
    ).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Spool.__table__.c.id)


# The doors' statements, built once (hotsql.py), the upsert one per dialect.
_INTAKE = upserts(_intake_statement)
_RAW_INSERT = insert(SpoolRaw.__table__)
_BY_KEY = select(Spool.id).where(Spool.dedupe_key == bindparam("key"))
_OUTCOME = update(Spool).where(Spool.id == bindparam("spool_id")).values(
    state=bindparam("new_state"), outcome=bindparam("new_outcome"),
    ticket_number=bindparam("number"), notes=bindparam("new_notes"),
    processed_at=bindparam("at"))
_FAILED = update(Spool).where(Spool.id == bindparam("spool_id"), Spool.state == PENDING).values(
    state=FAILED, error=bindparam("error"), attempts=Spool.attempts + 1)


@dataclass(frozen=True)
class Intake:
    """The spool row that holds a message, and whether it was there already."""

    spool_id: int
    duplicate: bool


@dataclass(frozen=True)
class Incoming:
    """A message as a door hands it over: the raw bytes and their envelope.

    ``mail_from`` is ``""`` for the null reverse-path and None when there is no
    envelope at all (an import).  ``raw`` is the SMTP door's receive buffer as it
    stands (a ``bytearray``): a copy would be one more message in memory.
    """

    raw: bytes | bytearray
    door: str
    mail_from: str | None
    rcpt_tos: list[str]
    now: datetime


def dedupe_key(raw: bytes) -> tuple[str, str | None]:
    """``(key, message_id)`` for ``raw``: the Message-ID when present, else a digest.

    Only the header section is parsed (RFC 5322 §2.1: it ends at the first empty
    line), so a message with a large attachment costs no more than a small one.
    """
    end = _header_end(raw)
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:end])
    found = MSGID_RE.findall(str(headers.get("Message-ID", "")))
    if found:
        # Without NUL, as the parsed mail has it (message.py): PostgreSQL cannot store
        # NUL, and one such row would fail the listener's whole group commit.
        message_id = without_nul(found[0])
        return f"mid:{message_id}", message_id
    return f"sha256:{hashlib.sha256(raw).hexdigest()}", None


def _header_end(raw: bytes) -> int:
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) + 2 if ends else len(raw)


def intake(engine: Engine, raw: bytes, *, door: str, mail_from: str | None, rcpt_tos: list[str],
           now: datetime) -> Intake:
    """Commit one message with its envelope; raises only when the database fails."""
    return intake_many(engine, [Incoming(raw, door, mail_from, rcpt_tos, now)])[0]


def intake_many(engine: Engine, items: list[Incoming]) -> list[Intake]:
    """Commit ``items`` in one transaction, so that one disk flush makes all of them
    durable (group commit); raises only when the database fails, and then none of
    them is stored.  A message whose dedupe key is there already, or earlier in the
    same batch, is not stored again and comes back with ``duplicate`` set.  The
    commit leaves SQLite's checkpoint to the other writers (``db.checkpoint_later``).
    """
    stored = []
    with engine.connect() as conn, checkpoint_later(conn), conn.begin():
        for item in items:
            key, message_id = dedupe_key(item.raw)
            new_id = _insert(conn, item, key, message_id)
            if new_id is None:
                existing = hotsql.run(conn, _BY_KEY, {"key": key}).scalar_one()
                stored.append(Intake(existing, True))
            else:
                stored.append(Intake(new_id, False))
    return stored


def _insert(conn: Connection, item: Incoming, key: str, message_id: str | None) -> int | None:
    """Insert ``item``'s row and its bytes; its id, or None when ``key`` is there
    already.  A large message is written in pieces after its row (blobio.py): no copy
    of it is made."""
    new_id = hotsql.run(conn, _INTAKE[conn.dialect.name], dict(
        key=key, message_id=message_id, door=item.door, mail_from=item.mail_from,
        rcpt_tos=item.rcpt_tos, size=len(item.raw), received_at=item.now)).scalar()
    if new_id is None:
        return None
    if blobio.piecewise(conn, len(item.raw)):
        conn.execute(insert(SpoolRaw.__table__).values(
            spool_id=new_id, raw=blobio.placeholder(len(item.raw))))
        blobio.write(conn, "spool_raw", "raw", new_id, item.raw)
    else:
        hotsql.run(conn, _RAW_INSERT, {"spool_id": new_id, "raw": item.raw})
    return new_id


def pending_ids(engine: Engine, limit: int = 100) -> list[int]:
    """The oldest pending rows' ids, in arrival order."""
    with session_scope(engine) as session:
        query = select(Spool.id).where(Spool.state == PENDING).order_by(Spool.id).limit(limit)
        return list(session.exec(query).all())


def pending_raw(engine: Engine, spool_id: int) -> bytes | None:
    """The message of the pending row ``spool_id`` (None when it is not pending), read
    without claiming it: what the pipeline parses before its transaction begins."""
    # One statement gives the length and, for all but large values, the bytes; a large
    # one is then read in pieces (SQLite) or by a second SELECT.
    with engine.connect() as conn:
        found = hotsql.run(conn, _PENDING_RAW, {"spool_id": spool_id}).first()
        if found is None:
            return None
        size, raw = found
        if raw is not None:
            return raw
        if blobio.piecewise(conn, size):
            return blobio.read(conn, "spool_raw", "raw", spool_id)
        return conn.execute(_RAW, {"spool_id": spool_id}).scalar()


def claim(session: Session, spool_id: int) -> Spool | None:
    """Claim the pending row ``spool_id`` for this transaction; None when it is not
    pending or another instance holds it.  The row comes back from the claim itself,
    as a plain object outside the session: ``record_outcome`` writes what processing
    decided.  The message is in ``spool_raw``, which nothing updates (``pending_raw``
    reads it).

    On PostgreSQL the row is locked with ``FOR UPDATE SKIP LOCKED`` (instances pass
    over a row another one works on); SQLite has one writer and no such clause, and
    the conditional UPDATE alone makes the claim exact on both.
    """
    locking = session.get_bind().dialect.name == "postgresql"
    claimed = execute(session, _CLAIM[locking], spool_id=spool_id)
    row = claimed.first()
    return loaded(Spool, claimed.mapping(row)) if row is not None else None


def record_outcome(session: Session, row: Spool) -> None:
    """Write the state, outcome, ticket, notes and time that processing set on the
    claimed ``row``, in the pipeline's transaction."""
    execute(session, _OUTCOME, spool_id=row.id, new_state=row.state, new_outcome=row.outcome,
            number=row.ticket_number, new_notes=row.notes, at=row.processed_at)


def fail(session: Session, spool_id: int, error: str) -> None:
    """Keep a row whose processing raised, with its error, for ``spool retry``; in the
    caller's transaction (the batch the row was processed in)."""
    execute(session, _FAILED, spool_id=spool_id, error=error)


def retry(engine: Engine, ids: list[int] | None = None) -> list[int]:
    """Put failed rows (all, or those in ``ids``) back to pending; returns their ids."""
    with session_scope(engine) as session:
        query = select(Spool.id).where(Spool.state == FAILED)
        if ids:
            query = query.where(Spool.id.in_(ids))
        found = list(session.exec(query).all())
        if found:
            session.execute(
                update(Spool).where(Spool.id.in_(found)).values(state=PENDING, error=None)
            )
        return found
