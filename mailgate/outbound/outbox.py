"""The outbox table: queue a built message in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr

from sqlmodel import Session

from mailgate.models import Outbox
from mailgate.outbound.mailpolicy import SMTP


def enqueue(session: Session, msg: EmailMessage, *, template: str, ticket_number: int | None,
            automatic: bool, now: datetime) -> Outbox:
    """Queue ``msg``; it is sent by the outbox worker once the transaction commits."""
    row = Outbox(
        ticket_number=ticket_number,
        template=template,
        mail_from=parseaddr(str(msg["From"]))[1],
        to=parseaddr(str(msg["To"]))[1].lower(),
        subject=str(msg["Subject"]),
        message_id=str(msg["Message-ID"]),
        message=msg.as_bytes(policy=SMTP),
        automatic=automatic,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(row)
    return row
