"""The outbox table: queue a composed message in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from mailgate.db import execute
from mailgate.models import Outbox
from mailgate.outbound.compose import Composed

_INSERT = Outbox.__table__.insert()  # built once (db.execute)


def enqueue(session: Session, mail: Composed, *, template: str, ticket_number: int | None,
            automatic: bool, now: datetime) -> None:
    """Queue ``mail``; it is sent by the outbox worker once the transaction commits."""
    execute(session, _INSERT, ticket_number=ticket_number, template=template,
            mail_from=mail.mail_from, to=mail.to, subject=mail.subject,
            message_id=mail.message_id, message=mail.message, automatic=automatic,
            created_at=now, next_attempt_at=now)
