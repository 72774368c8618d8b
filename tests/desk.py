"""An in-process help desk: the real pipeline on a real SQLite file, no sockets.

For tests of pipeline behaviour in detail (and of the corpus) where starting a
daemon per case would only add seconds.  The clock is fake and moves on demand.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import select

from mailgate import bootstrap, config, db, pipeline, spool, views
from mailgate.db import session_scope
from mailgate.models import Outbox, Ticket
from mailgate.senders import sync
from tests.helpers import make_home


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


class Desk:
    """Services wired on a temporary home; ``deliver`` runs intake and the pipeline."""

    def __init__(self, root: Path, extra_config: str = "", rules: dict[str, str] | None = None):
        """``rules`` maps file names of rules/ to the text that replaces the test ones."""
        self.home = make_home(root, extra=extra_config, upgrade=False)
        for name, text in (rules or {}).items():
            (root / "rules" / name).write_text(text)
        self.clock = FakeClock()
        self.svc = bootstrap.build(config.load(self.home.config), clock=self.clock)
        db.upgrade(self.svc.engine)
        with session_scope(self.svc.engine) as session:
            sync(session, self.svc.policy)

    def deliver(self, msg: EmailMessage | bytes, *, rcpt: str = "hd@example.com",
                mail_from: str | None = "sender@example.net", door: str = "smtp"):
        """Spool and process one message; returns the pipeline's Result (None if a dupe)."""
        return pipeline.process(self.svc, self.spool(msg, rcpt=rcpt, mail_from=mail_from,
                                                     door=door))

    def spool(self, msg: EmailMessage | bytes, *, rcpt: str = "hd@example.com",
              mail_from: str | None = "sender@example.net", door: str = "smtp") -> int:
        """Spool one message as ``door`` delivered it, without processing it; its id."""
        raw = msg if isinstance(msg, bytes) else msg.as_bytes(policy=email.policy.SMTP)
        return spool.intake(self.svc.engine, raw, door=door, mail_from=mail_from,
                            rcpt_tos=[rcpt], now=self.clock()).spool_id

    def view(self, number: int = 10000) -> dict:
        """``tickets show --json`` of ticket ``number``, read in-process."""
        with session_scope(self.svc.engine) as session:
            shown = views.show_ticket(session, number)
        assert shown is not None, f"no ticket #{number}"
        return shown

    def tickets(self) -> list[Ticket]:
        with session_scope(self.svc.engine) as session:
            return list(session.exec(select(Ticket).order_by(Ticket.number)))

    def outbox(self, to: str | None = None) -> list[EmailMessage]:
        """Queued mails (optionally to one address) parsed back, oldest first."""
        with session_scope(self.svc.engine) as session:
            query = select(Outbox).order_by(Outbox.id)
            if to:
                query = query.where(Outbox.to == to)
            rows = list(session.exec(query))
        return [email.message_from_bytes(r.message, policy=email.policy.default) for r in rows]
