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

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from mailgate.db import session_scope
from mailgate.message import MSGID_RE
from mailgate.models import Spool

PENDING, PROCESSED, IGNORED, FAILED = "pending", "processed", "ignored", "failed"


@dataclass(frozen=True)
class Intake:
    """The spool row that holds a message, and whether it was there already."""

    spool_id: int
    duplicate: bool


def dedupe_key(raw: bytes) -> tuple[str, str | None]:
    """``(key, message_id)`` for ``raw``: the Message-ID when present, else a digest."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    found = MSGID_RE.findall(str(headers.get("Message-ID", "")))
    if found:
        return f"mid:{found[0]}", found[0]
    return f"sha256:{hashlib.sha256(raw).hexdigest()}", None


def intake(engine: Engine, raw: bytes, *, door: str, mail_from: str | None, rcpt_tos: list[str],
           now: datetime) -> Intake:
    """Commit ``raw`` with its envelope; raises only when the database fails.

    ``mail_from`` is ``""`` for the null reverse-path and None when there is no
    envelope at all.
    """
    key, message_id = dedupe_key(raw)
    row = Spool(dedupe_key=key, message_id=message_id, door=door, mail_from=mail_from,
                rcpt_tos=rcpt_tos, raw=raw, size=len(raw), received_at=now)
    try:
        with session_scope(engine) as session:
            session.add(row)
            session.flush()
            return Intake(row.id, False)
    except IntegrityError:
        with session_scope(engine) as session:
            existing = session.exec(select(Spool.id).where(Spool.dedupe_key == key)).one()
        return Intake(existing, True)


def pending_ids(engine: Engine, limit: int = 100) -> list[int]:
    """The oldest pending rows' ids, in arrival order."""
    with session_scope(engine) as session:
        query = select(Spool.id).where(Spool.state == PENDING).order_by(Spool.id).limit(limit)
        return list(session.exec(query).all())


def claim(session: Session, spool_id: int) -> Spool | None:
    """Lock the pending row ``spool_id`` for this transaction; None when it is not
    pending or another instance holds it.

    ``FOR UPDATE SKIP LOCKED`` lets several instances on one PostgreSQL pass over a row
    that one of them is processing instead of queueing behind its lock.  SQLite has
    one writer at a time and no such clause; there a read before the write would also
    turn a concurrent intake commit into an immediate SQLITE_BUSY, so the claim is the
    UPDATE alone.  The conditional UPDATE makes the claim exact on both.
    """
    if session.get_bind().dialect.name == "postgresql":
        locked = session.exec(
            select(Spool.id).where(Spool.id == spool_id, Spool.state == PENDING)
            .with_for_update(skip_locked=True)
        ).first()
        if locked is None:
            return None
    claimed = session.execute(
        update(Spool).where(Spool.id == spool_id, Spool.state == PENDING)
        .values(state=PROCESSED, attempts=Spool.attempts + 1)
    )
    return session.get(Spool, spool_id) if claimed.rowcount == 1 else None


def mark_failed(engine: Engine, spool_id: int, error: str) -> None:
    """Keep a row whose processing raised, with its error, for ``spool retry``."""
    with session_scope(engine) as session:
        session.execute(
            update(Spool)
            .where(Spool.id == spool_id, Spool.state == PENDING)
            .values(state=FAILED, error=error, attempts=Spool.attempts + 1)
        )


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
