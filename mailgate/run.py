"""The value a message carries through the pipeline steps, and what they decide."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from mailgate import tickets
from mailgate.bootstrap import Services
from mailgate.config import MailboxConfig
from mailgate.message import ParsedMail
from mailgate.models import Spool, Ticket
from mailgate.notify import Notifier


@dataclass
class Result:
    """What processing decided: spool state, outcome, ticket and the notes behind it."""

    state: str
    outcome: str
    ticket: int | None = None
    notes: list[str] = field(default_factory=list)
    message_id: str | None = None
    sender: str = ""
    door: str = ""


@dataclass
class Run:
    """One message on its way through the steps."""

    svc: Services
    session: Session
    row: Spool
    raw: bytes  # the message as received
    mail: ParsedMail
    mailbox: MailboxConfig
    now: datetime
    notifier: Notifier

    def add_article(self, ticket: Ticket) -> int:
        """Store this message as an article of ``ticket``; the article's id."""
        return tickets.add_article(
            self.session, ticket, self.mail, spool_id=self.row.id, now=self.now,
            max_attachment_size=self.svc.config.tickets.max_attachment_size)
